"""The transformers provider with a tiny random-initialised LLaVA built here from configs (no
download): its tokenizer from a character vocabulary (tokenizers + PreTrainedTokenizerFast),
its image processor from explicit arguments, its own chat template; saved to a folder and
loaded by path through AutoProcessor / AutoModelForImageTextToText. Its answers are noise:
the drop counts must say so, and a rerun must generate nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from geoloc_core.lmm.local import pick_device, to_processor_messages
from geoloc_core.lmm.prompts import image_data_url
from geoloc_core.steps.lmm import run_lmm_stage
from tests.test_lmm_settings import png_bytes
from tests.test_lmm_stage import BENCHMARK, make_project, quiet, read_answers, stage_section

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: "
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]


def tiny_llava(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    characters = sorted(set(" abcdefghijklmnopqrstuvwxyz0123456789{}[]():;,.\"'-_?!<>"))
    vocab = {token: i for i, token in enumerate(SPECIALS + characters)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")  # one token per character
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=16,
        ),
        text_config=LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        image_token_index=vocab["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


def tiny_vlm_section(checkpoint: Path, **settings) -> dict:
    """The LMM section for the tiny checkpoint in process (no server), with settings on top."""
    return stage_section(server=None, provider="transformers", model=str(checkpoint), **settings)


def test_messages_become_the_processors_format():
    url = image_data_url(png_bytes())
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "where?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]
    converted, images = to_processor_messages(messages)
    assert converted == [
        {"role": "user", "content": [{"type": "text", "text": "where?"}, {"type": "image"}]}
    ]
    assert len(images) == 1 and images[0].size == (8, 8) and images[0].mode == "RGB"
    assert pick_device("cpu")[0] == "cpu"


def test_tiny_vlm_answers_are_dropped_and_counted_and_cached(tmp_path, checkpoint):
    paths = make_project(tmp_path, queries=2, per_kind=5)
    section = tiny_vlm_section(
        checkpoint,
        device="cpu",
        g3_rag_sizes=[0, 5],
        n=2,
        max_tokens=8,
    )
    summary = run_lmm_stage(paths, BENCHMARK, section, progress=False, log=quiet)
    assert summary["provider"] == "transformers" and summary["prompts"] == 4
    assert summary["requests_sent"] == 4 and summary["answers_received"] == 8
    assert summary["answers_kept"] == 0 and summary["drops_total"] == 8
    assert summary["drops"]["unparseable"] + summary["drops"]["empty"] == 8
    assert summary["tokens_in"] > 0 and summary["estimated_cost"] == 0.0
    assert read_answers(paths).empty

    again = run_lmm_stage(paths, BENCHMARK, section, progress=False, log=quiet)
    assert again["requests_sent"] == 0 and again["cache_hits"] == 8


def test_tiny_vlm_takes_dualgeo_prompts_with_several_images(tmp_path, checkpoint):
    paths = make_project(tmp_path, queries=1, per_kind=3)
    section = tiny_vlm_section(
        checkpoint,
        device="auto",
        mode="dualgeo",
        dualgeo_top_m=3,
        n=1,
        max_tokens=4,
        temperature=0.0,
    )
    summary = run_lmm_stage(paths, BENCHMARK, section, progress=False, log=quiet)
    assert summary["requests_sent"] == 1 and summary["drops_total"] == 1
