"""The transformers backend: a vision-language model in this process, same cache and parser path.

`model` is a checkpoint that AutoModelForImageTextToText and AutoProcessor load (a hub id or
a local folder). The OpenAI-format messages are turned into the processor's own format (an
image part becomes {"type": "image"}, its data URL a PIL image) and rendered with the
processor's chat template. device auto: cuda in fp16 when present, else CPU in fp32.
Sampling is seeded per prompt, so a rerun without cache gives the same answers. One prompt
at a time (max_concurrency 1): a single model does not serve threads in parallel.
"""

from __future__ import annotations

import base64
import io
import threading
from typing import Any

from geoloc_core.lmm.backend import Completion, Failure
from geoloc_core.lmm.errors import LmmStageError
from geoloc_core.lmm.settings import LmmSettings


def pick_device(requested: str) -> tuple[str, Any]:
    """(device, dtype): cuda with fp16 when asked for or available under auto, else cpu fp32."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise LmmStageError("lmm.device is cuda but torch sees no CUDA device; use auto or cpu")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return "cuda", torch.float16
    return "cpu", torch.float32


def decode_data_url(url: str) -> Any:
    """A data URL (what prompts.py makes) back to an RGB PIL image."""
    from PIL import Image

    header, _, payload = url.partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        raise ValueError("the transformers provider takes images as base64 data URLs only")
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        return image.convert("RGB")


def to_processor_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list]:
    """(messages in the processor's chat format, the images in order of appearance)."""
    converted: list[dict[str, Any]] = []
    images: list[Any] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts: list[dict[str, Any]] = []
        for part in content or []:
            if part.get("type") == "image_url":
                images.append(decode_data_url(part["image_url"]["url"]))
                parts.append({"type": "image"})
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": part.get("text", "")})
        converted.append({"role": message.get("role", "user"), "content": parts})
    return converted, images


class TransformersBackend:
    provider = "transformers"
    max_concurrency = 1

    def __init__(self, settings: LmmSettings) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.settings = settings
        self.model = settings.model
        self.device, self.dtype = pick_device(settings.device)
        try:
            self.processor = AutoProcessor.from_pretrained(settings.model)
            network = AutoModelForImageTextToText.from_pretrained(settings.model, dtype=self.dtype)
        except (OSError, ValueError) as exc:
            raise LmmStageError(
                f"lmm.model {settings.model!r} does not load as an image-text-to-text model "
                f"with its processor ({type(exc).__name__}): give a local folder or a cached "
                "hub id of a vision-language checkpoint (e.g. a Qwen2-VL, SmolVLM, LLaVA)"
            ) from exc
        self.network = network.to(self.device).eval()
        self._torch = torch
        self._lock = threading.Lock()

    def complete(self, messages: list[dict[str, Any]], n: int, seed: int) -> Completion:
        torch = self._torch
        converted, images = to_processor_messages(messages)
        text = self.processor.apply_chat_template(
            converted, add_generation_prompt=True, tokenize=False
        )
        inputs = self.processor(
            text=[text], images=[images] if images else None, return_tensors="pt"
        )
        inputs = {name: self._to_device(value) for name, value in inputs.items()}
        sampling = self.settings.temperature > 0
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            pad_id = tokenizer.eos_token_id
        options: dict[str, Any] = {
            "max_new_tokens": self.settings.max_tokens,
            "do_sample": sampling,
            "num_return_sequences": n if sampling else 1,
            "pad_token_id": pad_id,
        }
        if sampling:
            options["temperature"] = self.settings.temperature
        devices = [torch.cuda.current_device()] if self.device == "cuda" else []
        with self._lock, torch.inference_mode(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            output = self.network.generate(**inputs, **options)
        prompt_length = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_length:]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        if not sampling:
            texts = texts * n  # greedy decoding: the n answers are the same answer
        produced = int((new_tokens != pad_id).sum()) if pad_id is not None else new_tokens.numel()
        return Completion(
            texts=[t.strip() for t in texts],
            input_tokens=int(inputs["input_ids"].numel()),
            output_tokens=produced,
        )

    def _to_device(self, value: Any) -> Any:
        if not hasattr(value, "to"):
            return value
        if value.is_floating_point():
            return value.to(device=self.device, dtype=self.dtype)  # pixels in the model's dtype
        return value.to(device=self.device)

    def classify(self, exc: Exception) -> tuple[Failure, str] | None:
        return None  # a local failure is a bug or a setup error: let it surface

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return 0.0  # local compute: no per-token price
