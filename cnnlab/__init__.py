"""cnnlab: reproducible CNN image-classification experiments as a DVC pipeline."""
