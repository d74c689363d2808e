"""Neural networks: shared ViT blocks, the forecaster and the diffusion downscaler."""
