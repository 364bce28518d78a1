"""Infrastructure every stage uses: model files (safetensors + JSON), number formats, output-folder checks, typed options."""
