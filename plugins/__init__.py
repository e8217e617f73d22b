"""ganlab's first-party variant plugins, one module per variant (installed as ganlab_plugins).

Each is registered through the ``ganlab`` entry-point group in pyproject.toml, exactly as a
third-party package would register its own.
"""
