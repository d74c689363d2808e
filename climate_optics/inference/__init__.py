"""Inference: run trained models over stores and write forecast stores."""
