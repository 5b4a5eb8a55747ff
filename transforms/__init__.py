"""Beam stages of the MLM pipeline and the plain functions they wrap.

Each module holds one stage: the algorithm as plain functions (tested without
Beam) and a composite ``beam.PTransform`` whose DoFns only adapt them.
"""
