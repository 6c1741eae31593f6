"""`planner recommend`: model size and tokens (and, with a GPU plan, batch, GPUs, time and cost)."""

# No `from __future__ import annotations` here: Typer reads the options from the annotations at every
# run, and 34 postponed ones cost it an eval each (~11 ms of start-up); real annotations cost ~1 ms.
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import check_output_path, emit_data, output_format, stderr_console, stdout_console, warn
from planner.defaults import DEFAULT_BATCH_LAW, DEFAULT_LAW
from planner.errors import UsageError

Num = Annotated[str | None, typer.Option(show_default=False)]


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend)


def recommend(
    target_loss: Annotated[str | None, typer.Option(help="Target final loss (nats, in the law's units).")] = None,
    compute: Annotated[str | None, typer.Option(help="Lifetime FLOP budget (training FLOPs without inference demand), e.g. 1e23.")] = None,
    params: Annotated[str | None, typer.Option(help="Model size N, e.g. 7B; alone: trained to the law's frontier.")] = None,
    tokens: Annotated[str | None, typer.Option(help="With --params: evaluate this training-token count, e.g. 1.4T.")] = None,
    inference_tokens: Annotated[str | None, typer.Option(help="Lifetime inference tokens (input + output), e.g. 2e12.")] = None,
    inference_requests: Annotated[str | None, typer.Option(help="Lifetime requests (use with --input-tokens/--output-tokens).")] = None,
    input_tokens: Annotated[str | None, typer.Option(help="Prompt tokens per request. \\[default: 70]")] = None,
    output_tokens: Annotated[str | None, typer.Option(help="Generated tokens per request. \\[default: 215]")] = None,
    objective: Annotated[str, typer.Option(help="Minimise lifetime 'flops' or dollar 'cost'.")] = "flops",
    law: Annotated[str, typer.Option(help="Loss-law profile name or YAML path (`planner laws list`).")] = DEFAULT_LAW,
    train_gpu: Annotated[str | None, typer.Option(help="Cost: training accelerator profile. \\[default: h100-sxm5-80gb]")] = None,
    inference_gpu: Annotated[str | None, typer.Option(help="Cost: serving accelerator profile. \\[default: h100-sxm5-80gb]")] = None,
    train_dtype: Annotated[str | None, typer.Option(help="Training dtype (GPU plan and cost): bf16, fp16, fp8, tf32 or fp32 (int8/int4 are inference-only). \\[default: bf16]")] = None,
    inference_dtype: Annotated[str | None, typer.Option(help="Cost: serving dtype. \\[default: fp8]")] = None,
    train_mfu: Annotated[float | None, typer.Option(help="Cost: training MFU, 0-1. \\[default: the GPU profile's prior]")] = None,
    prefill_mfu: Annotated[float | None, typer.Option(help="Cost: prefill MFU, 0-1. \\[default: 0.5]")] = None,
    decode_mfu: Annotated[float | None, typer.Option(help="Cost: decode MFU, 0-1. \\[default: 0.01]")] = None,
    train_price: Annotated[float | None, typer.Option(help="USD per training GPU-hour (GPU plan and cost). \\[default: profile price]")] = None,
    inference_price: Annotated[float | None, typer.Option(help="Cost: USD per serving GPU-hour. \\[default: profile price]")] = None,
    gpu: Annotated[str | None, typer.Option(help="GPU plan: training accelerator profile (`planner hardware list`). \\[default: h100-sxm5-80gb]")] = None,
    gpus: Annotated[int | None, typer.Option(help="GPU plan: fix the GPU count (reports the token penalty if the batch must pass the CBS).")] = None,
    max_gpus: Annotated[int | None, typer.Option(help="GPU plan: cap the automatic GPU count; it keeps the planned batch (a power of two sequences), so it uses the most GPUs under the cap whose data-parallel ranks divide it, e.g. 4 of 7; --gpus N uses exactly N.")] = None,
    deadline: Annotated[str | None, typer.Option(help="GPU plan: fewest GPUs that finish within a duration with its unit: 30d, 720h, 90min, 3600s, 2w.")] = None,
    mfu: Annotated[float | None, typer.Option(help="GPU plan: training MFU, 0-1. \\[default: the GPU profile's prior]")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Sequence length in tokens. \\[default: the law's fitted runs', else 4096]", show_default=False)] = None,
    vocab_size: Annotated[int | None, typer.Option(help="Vocabulary size, for the model shape and logits memory. \\[default: the law's fitted runs', else 32000]", show_default=False)] = None,
    zero_stage: Annotated[int, typer.Option(help="ZeRO stage 0-3 for the memory plan.")] = 1,
    recompute: Annotated[str, typer.Option(help="Activation recomputation: none, selective or full.")] = "selective",
    batch_law: Annotated[str, typer.Option(help="Critical-batch law profile or YAML path.")] = DEFAULT_BATCH_LAW,
    batch_tokens: Annotated[str | None, typer.Option(help="Use this global batch (tokens) instead of the recommended one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    as_yaml: Annotated[bool, typer.Option("--yaml", help="Print the result as YAML on stdout.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG: objective along the iso-loss curve, and N, D against demand.")] = None,
    write_plan: Annotated[Path | None, typer.Option(help="Write a plan file for `planner check` (limits 25% above this plan).")] = None,
) -> None:
    """Recommend model size, tokens, batch, learning rate and a GPU plan for a target loss, a budget or a size.

    Example: planner recommend --target-loss 2.3 --inference-tokens 2e12
    """
    from planner import planning, resolve
    from planner.resolve import RecommendFlags

    fmt = output_format(as_json, as_yaml)
    check_output_path(plot, "--plot", ".png")  # before any work, and before any warning
    check_output_path(write_plan, "--write-plan")
    given = dict(locals())
    flags = RecommendFlags(**{k: v for k, v in given.items() if k in RecommendFlags.__dataclass_fields__})
    resolve.check_names(flags)
    resolve.check_counts(flags)
    loaded = resolve.load_law(law)  # first: --seq-len and --vocab-size default to the runs the law was fitted on
    identity = resolve.law_identity(loaded)
    shape = resolve.fitted_shape_defaults(flags, identity)
    flags = shape.flags
    request = resolve.recommend_request(flags)
    options = resolve.training_options(flags, identity, shape.notes)  # every flag is checked before the law is solved
    p = resolve.law_params(loaded.profile)
    result = planning.recommend(request, p, identity, resolve.law_samples(loaded.profile),
                                min_tokens=resolve.min_training_tokens(flags), law_ref=resolve.profile_ref(loaded))
    from planner import training_plan

    result = training_plan.attach(result, training_plan.plan_training(result.n_params, result.n_tokens, options))
    for warning in result.warnings:
        warn(warning)
    if plot is not None:
        from planner import plots

        plots.recommendation(result, request, p, plot)
        stderr_console().print(f"wrote {plot}", markup=False, soft_wrap=True)
    if write_plan is not None:
        from planner import plan_io

        # a law file is recorded relative to the plan (where `planner check` looks first), not as typed here
        laws = (plan_io.path_for_plan(law, write_plan), plan_io.path_for_plan(batch_law, write_plan))
        text = plan_io.dump(plan_io.plan_from_result(result, *laws),
                            "# Written by `planner recommend --write-plan`; guard it with `planner check`.\n")
        try:
            write_plan.write_text(text)
        except OSError as exc:
            raise UsageError(f"--write-plan: cannot write {write_plan}: {exc.strerror}", hint="choose a writable path") from None
        stderr_console().print(f"wrote {write_plan}", markup=False, soft_wrap=True)
    if fmt != "table":
        emit_data(result.model_dump(mode="json"), fmt)
        return
    from planner import render

    stdout_console().print(render.recommendation(result))
