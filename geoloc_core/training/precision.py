"""Mixed precision (train.amp): the autocast context and, for fp16, the gradient scaler.

fp16 needs a scaler (small gradients underflow in fp16) and CUDA (CPU autocast has no fp16
kernels worth having); bf16 has fp32's exponent range, so it needs no scaler and also runs
as CPU autocast. off is a plain fp32 step, exactly the step of a run without this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class Precision:
    """How one training step runs: forward under autocast, backward through the scaler."""

    def __init__(self, amp: str, device: torch.device | str):
        device = torch.device(device)
        if amp not in ("off", *DTYPES):
            raise ValueError(f"train.amp={amp!r}: use off, fp16 or bf16")
        if amp == "fp16" and device.type != "cuda":
            raise ValueError(
                f"train.amp=fp16 needs a CUDA device, but training runs on {device.type}: set "
                "train.amp to off or bf16, or train.device to cuda"
            )
        self.amp = amp
        self.device_type = device.type
        enabled = amp == "fp16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=True) if enabled else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.amp == "off":
            yield
            return
        with torch.autocast(self.device_type, dtype=DTYPES[self.amp]):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)
