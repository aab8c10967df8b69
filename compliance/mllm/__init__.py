"""The multimodal-LLM pipeline: one Qwen2-VL-family prompt per submission fills the judgments schema.

``answer`` (the answer schema), ``prompt`` (the request), ``parse`` (raw text -> judgments and output
errors), ``backends`` (transformers in-process, or any OpenAI-compatible server), ``pipeline``
(``MllmPipeline``, the ``Pipeline`` protocol), ``tiny`` (a tiny random-weight checkpoint for tests
and the CPU bench).
"""
