"""Teaching the MLLM from reviewers' corrections: ``export`` reads reviewed submissions from the
store and writes SFT and DPO JSONL with their photos; ``lora`` fine-tunes on the SFT file and saves
an adapter the transformers backend loads. Model code never reads the store; this room does."""
