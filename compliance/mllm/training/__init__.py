"""Training the MLLM from reviewers' corrections: ``export`` (SFT and DPO JSONL) and ``lora``
(a LoRA fine-tune on the SFT file, saved as an adapter the transformers backend loads)."""
