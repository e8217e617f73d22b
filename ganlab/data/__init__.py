"""Datasets: 2-D mixtures and image sets, all offline."""

from ganlab.data.base import GanDataset, TensorImages, uint8_to_unit, unit_to_uint8

__all__ = ["GanDataset", "TensorImages", "uint8_to_unit", "unit_to_uint8"]
