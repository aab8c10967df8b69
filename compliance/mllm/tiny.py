"""A tiny random-weight Qwen2-VL checkpoint, built on the spot, for tests and the CPU bench.

It has the real architecture (vision tower, patch merger, M-RoPE decoder), a byte-level BPE
tokenizer with Qwen2-VL's special tokens and pre-tokenizer, Qwen2-VL's chat template and image
processor, all saved as an ordinary checkpoint folder, so that it loads through exactly the
production loader. Its answers are noise: it shows that the plumbing works and what the
pipeline does with garbage, never what a trained model would say.

``qwen2_vl_2b_config`` is the published architecture of Qwen/Qwen2-VL-2B-Instruct (its
config.json), for measuring throughput with random weights where the weights cannot be fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compliance import plates
from compliance.mllm.answer import FIELDS, compact_json
from compliance.mllm.prompt import Task, instruction

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2's pre-tokenizer: digits one by one, so a plate's serial is one token per character.
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2-VL-Instruct's chat template, as shipped in its chat_template.json.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus() -> list[str]:
    """Text the tokenizer learns its merges from: the prompts, answers in the schema's shape,
    every plate character and the Chinese words models answer with."""
    answers = [
        {
            "person": "yes",
            "people": 1,
            "vehicle": "yes",
            "kind": "truck",
            "plate": "京A12345",
            "color": "blue",
            "rows": 1,
            "face": "yes",
            "licence_face": "yes",
            "same": "yes",
        },
        {
            "person": "no",
            "people": 0,
            "vehicle": "no",
            "kind": "unknown",
            "plate": None,
            "color": "unknown",
            "rows": None,
            "face": "unknown",
            "licence_face": "no",
            "same": "unknown",
        },
    ]
    lines = [instruction(task) for task in Task] + [compact_json(a) for a in answers] * 4
    lines += [
        " ".join(FIELDS),
        plates.CHARSET,
        "是 否 有 无 不确定 蓝色 黄色 绿色 白色 黑色 小汽车 货车 客车 面包车 摩托车 挂车",
    ]
    lines += ["You are a helpful assistant.", "Image 1 / 图1: Image 2 / 图2:"]
    return lines


def build_tokenizer(vocab_size: int = 1024) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:2] + SPECIAL_TOKENS[3:]),
        chat_template=CHAT_TEMPLATE,
    )


def _token_ids(tokenizer: Any) -> dict[str, int]:
    ids = dict(zip(SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)), strict=True))
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def tiny_config(tokenizer: Any) -> Any:
    from transformers import Qwen2VLConfig

    ids = _token_ids(tokenizer)
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        # head_dim 16: M-RoPE splits its 8 frequency pairs over time, height and width.
        "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1_000_000.0},
        "bos_token_id": ids["bos_token_id"],
        "eos_token_id": ids["eos_token_id"],
        "pad_token_id": ids["pad_token_id"],
    }
    vision = {
        "depth": 2,
        "embed_dim": 32,
        "hidden_size": 64,
        "num_heads": 2,
        "mlp_ratio": 2,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    return Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
    )


def qwen2_vl_2b_config(tokenizer: Any) -> Any:
    """Qwen/Qwen2-VL-2B-Instruct's architecture (config.json), with this tokenizer's special ids."""
    from transformers import Qwen2VLConfig

    ids = _token_ids(tokenizer)
    text = {
        "vocab_size": 151936,
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "max_window_layers": 28,
        "rms_norm_eps": 1e-6,
        "use_sliding_window": False,
        "rope_parameters": {"rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1_000_000.0},
        "bos_token_id": ids["bos_token_id"],
        "eos_token_id": ids["eos_token_id"],
        "pad_token_id": ids["pad_token_id"],
    }
    vision = {
        "depth": 32,
        "embed_dim": 1280,
        "hidden_size": 1536,
        "num_heads": 16,
        "mlp_ratio": 4,
        "in_channels": 3,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    return Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=True,
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
    )


def build_processor(tokenizer: Any, min_pixels: int, max_pixels: int) -> Any:
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    return Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_checkpoint(
    folder: Path, *, seed: int = 0, min_pixels: int = 56 * 56, max_pixels: int = 256 * 28 * 28
) -> Path:
    """Write a tiny random-weight Qwen2-VL checkpoint (model, tokenizer, processor) to ``folder``."""
    import torch
    from transformers import GenerationConfig, Qwen2VLForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = tiny_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    ids = _token_ids(tokenizer)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos_token_id"],
        eos_token_id=[ids["eos_token_id"], ids["pad_token_id"]],
        pad_token_id=ids["pad_token_id"],
    )
    model.save_pretrained(folder)
    build_processor(tokenizer, min_pixels, max_pixels).save_pretrained(folder)
    return folder


def random_qwen2_vl_2b(device: str, dtype: Any, min_pixels: int, max_pixels: int, seed: int = 0) -> tuple[Any, Any]:
    """Qwen2-VL-2B's architecture with random weights, in memory on ``device``: (processor, model)."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration(qwen2_vl_2b_config(tokenizer)).to(dtype).eval()
    return build_processor(tokenizer, min_pixels, max_pixels), model
