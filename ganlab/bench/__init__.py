"""Benchmarks: suites of cells (suite), running them (runner), the append-only results
store (store), leaderboards (aggregate, leaderboard) and the vanilla limitations report
(report)."""
