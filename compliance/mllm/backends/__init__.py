"""Where the multimodal model runs: in-process with transformers, or behind an OpenAI-compatible server."""
