"""The core's own registrations (datasets), made through the same hook as any plugin."""

from __future__ import annotations

from ganlab.data import images, mixtures, stacked
from ganlab.hookspecs import hookimpl


@hookimpl
def ganlab_register(registry):
    registry.add_dataset("ring8", mixtures.ring, "8 Gaussians on a circle of radius 1, std 0.01",
                         "points", {"n_modes": 8, "radius": 1.0, "std": 0.01})
    registry.add_dataset("grid25", mixtures.grid, "25 Gaussians at (2i-4, 2j-4), std 0.05",
                         "points", {"size": 5, "spacing": 2.0, "std": 0.05})
    registry.add_dataset("mixture", mixtures.custom_mixture,
                         "any 2-D Gaussian mixture: centres (JSON), std, weights (JSON)",
                         "points", {"centres": "[[1,0],[-1,0]]", "std": 0.05, "weights": ""})
    registry.add_dataset("digits", images.digits,
                         "scikit-learn's 1,797 8x8 handwritten digits (offline), 10 classes",
                         "image", {"image_size": 8, "split": "all"})
    registry.add_dataset("mnist", images.mnist,
                         "MNIST from IDX files in data_dir (default $GANLAB_DATA_DIR/mnist)",
                         "image", {"data_dir": "", "split": "any", "image_size": 28})
    registry.add_dataset("cifar10", images.cifar10,
                         "CIFAR-10 from its python batches in data_dir", "image",
                         {"data_dir": "", "split": "train", "image_size": 32})
    registry.add_dataset("folder", images.image_folder,
                         "every image under data_dir (sub-folders as classes)", "image",
                         {"data_dir": "", "image_size": 32, "channels": 3, "max_images": 50000})
    registry.add_dataset("stacked-mnist", stacked.stacked_mnist,
                         "Stacked MNIST: three MNIST digits as RGB channels, 1,000 modes (IDX files)",
                         "image", {"data_dir": "", "split": "any", "image_size": 28})
    # The core's metrics arrive the same way a plugin's would.
    from ganlab.metrics import standard

    standard.register(registry)
