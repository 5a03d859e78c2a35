"""Export the packaged sentence-transformers model to ONNX (fp32, and int8 from it). Needs torch.

Run once per model and recipe by `knowledge.onnx_embedder` in a child process
(`python -m knowledge.onnx_export export|quantize …`), so the serving process
never imports torch. optimum can't be used here (it pins transformers < 4.58; see FACTS.md):
the TorchScript exporter and onnxruntime's dynamic quantizer are what work.

The exported graph includes mean pooling and L2 normalisation, so it maps
(input_ids, attention_mask, token_type_ids) straight to sentence-transformers' embeddings.
"""

from __future__ import annotations

import sys
from pathlib import Path

OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "sentence_embedding"


def export_fp32(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    # Eager attention: the SDPA path doesn't trace into a graph with dynamic sequence length.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager", local_files_only=True).eval()

    class Pooled(torch.nn.Module):
        """Transformer + mean pooling over real tokens + L2 norm (sentence-transformers' modules)."""

        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            mean = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    # A padded batch of two, so the traced graph handles padding and any batch/sequence size.
    input_ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    attention_mask = (input_ids != 0).long()
    token_type_ids = torch.zeros_like(input_ids)
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    axes[OUTPUT] = {0: "batch"}
    with torch.inference_mode():
        torch.onnx.export(
            Pooled(model),
            (input_ids, attention_mask, token_type_ids),
            str(out),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes=axes,
        )


def quantize_int8(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Signed, symmetric, per-channel weights: measured faster than the u8 "avx2" recipe on this
    # kind of CPU (AVX2, no VNNI) at the same quality (FACTS.md).
    quantize_dynamic(
        str(fp32),
        str(out),
        per_channel=True,
        weight_type=QuantType.QInt8,
        extra_options={"WeightSymmetric": True},
    )


USAGE = """usage: python -m knowledge.onnx_export export MODEL_DIR FP32_OUT [INT8_OUT]
       python -m knowledge.onnx_export quantize FP32_IN INT8_OUT"""


def main(argv: list[str]) -> int:
    if len(argv) in (3, 4) and argv[0] == "export":
        export_fp32(Path(argv[1]), Path(argv[2]))
        if len(argv) == 4:
            quantize_int8(Path(argv[2]), Path(argv[3]))
        return 0
    if len(argv) == 3 and argv[0] == "quantize":
        quantize_int8(Path(argv[1]), Path(argv[2]))
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
