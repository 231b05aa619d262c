"""Measurement 9: prompts cost a converged pass no call per prompt.

One MLflow server holds 100 registered models (written straight into its SQLite database)
and 100 prompts with two versions each (registered through `mlflow.genai.register_prompt`,
as a team does). One alias environment lists the 100 models and N of the prompts; after one
pass has put every alias in place, converged passes are run in-process through the
controller's adapter and counted by the CountingProxy: with N = 0, 10 and 100 prompts the
read calls must not grow with N (MLflow's searches leave prompts out unless asked, so the
pass makes one search of prompts and one of their versions per chunk of names)."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mlflow_gitops.adapters.mlflow.registry import MlflowRegistry
from mlflow_gitops.core.model import DesiredState
from mlflow_gitops.desired.loader import load_texts
from mlflow_gitops.loop.reconciler import reconcile

from bench.stats import median
from tests.support.bulk_seed import add_models
from tests.support.counting_proxy import CountingProxy
from tests.support.servers import MlflowServer

MODELS = 100
PROMPTS = 100
COUNTS = (0, 10, PROMPTS)  # prompts listed beside the models
MARK_START = "<!-- prompts: written by `python -m bench --only prompts` (9.) -->"
MARK_END = "<!-- end of prompts -->"
HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"


@dataclass
class Listed:
    prompts: int
    seconds: list[float] = field(default_factory=list)
    reads: int = 0
    writes: int = 0
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)


@dataclass
class PromptFigures:
    date: str = ""
    command: str = ""
    seed_seconds: float = 0.0
    load: list[float] = field(default_factory=list)
    runs: list[Listed] = field(default_factory=list)

    def targets(self) -> list[tuple[str, str, bool]]:
        base = self.runs[0]
        most = self.runs[-1]
        return [
            (f"converged pass, {MODELS} models + {most.prompts} prompts: read calls = those "
             f"of the {MODELS} models alone + 2 (no call per prompt)",
             f"{most.reads} = {base.reads} + {most.reads - base.reads}",
             most.reads <= base.reads + 2),
            ("… the same read calls with 10 and with 100 prompts",
             " → ".join(str(r.reads) for r in self.runs[1:]),
             len({r.reads for r in self.runs[1:]}) == 1),
            ("converged pass with prompts: write calls = 0", str(most.writes), most.writes == 0),
        ]


def environment(prompts: list[str], models: list[str]) -> DesiredState:
    text = HEADER + "target:\n  alias: champion\nmodels:\n" + "".join(
        f"  {m}: 1\n" for m in models)
    if prompts:
        text += "prompts:\n" + "".join(f"  {p}: 1\n" for p in prompts)
    state, problems = load_texts({"environments/champion.yaml": text}, commit="p" * 40)
    if state is None:
        raise RuntimeError(f"bench prompt environment invalid: {problems[:3]}")
    return state


def measure(workdir: Path, repeats: int, say: Callable[[str], None]) -> PromptFigures:
    import mlflow

    out = PromptFigures(date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    folder = workdir / "prompts"
    shutil.rmtree(folder, ignore_errors=True)  # prompts are registered anew every run
    models = [f"model-{i:04d}" for i in range(MODELS)]
    prompts = [f"prompt-{i:04d}" for i in range(PROMPTS)]
    with MlflowServer(folder) as server:
        started = time.monotonic()
        add_models(folder / "mlflow.db", models, 2, "s3://bench/prompts", None,
                   {"champion": 1})
        mlflow.set_tracking_uri(server.uri)
        mlflow.set_registry_uri(server.uri)
        for name in prompts:
            for template in ("Summarize: {{text}}", "Summarize briefly: {{text}}"):
                mlflow.genai.register_prompt(name=name, template=template)
        out.seed_seconds = time.monotonic() - started
        say(f"9. registered {PROMPTS} prompts × 2 versions and {MODELS} models in "
            f"{out.seed_seconds:.1f} s")
        direct = MlflowRegistry(server.uri)
        first = reconcile(environment(prompts, models), {"default": direct})
        if not first.ok:
            raise RuntimeError("bench: the first pass with prompts failed: "
                               f"{first.plan.errors[:1]}")
        for count in COUNTS:
            desired = environment(prompts[:count], models)
            listed = Listed(count)
            out.load.append(os.getloadavg()[0])
            for _ in range(repeats + 1):  # the first one warms the server's caches
                began = time.perf_counter()
                result = reconcile(desired, {"default": direct}, previous=desired)
                listed.seconds.append(time.perf_counter() - began)
                if not result.ok or result.plan.changes:
                    raise RuntimeError(f"bench: not converged with {count} prompts "
                                       f"({len(result.plan.changes)} changes)")
            listed.seconds = listed.seconds[1:]
            with CountingProxy(server.uri) as proxy:
                reconcile(desired, {"default": MlflowRegistry(proxy.uri)}, previous=desired)
                listed.reads, listed.writes = proxy.reads(), proxy.writes()
                listed.calls = Counter({(m, p.split("?")[0]): n
                                        for (m, p), n in proxy.counts.items()})
            say(f"9. {count} prompts: {listed.reads} reads, {listed.writes} writes, "
                f"{median(listed.seconds):.2f} s")
            out.runs.append(listed)
    return out


def _calls(listed: Listed) -> str:
    return ", ".join(f"{n}× {p.rsplit('/mlflow/', 1)[-1]}"
                     for (_, p), n in sorted(listed.calls.items(), key=lambda i: i[0][1]))


def section(f: PromptFigures) -> str:
    lines = [
        MARK_START,
        "## Prompts in a converged pass",
        "",
        f"- **Date:** {f.date}; `{f.command}`; seeding {f.seed_seconds:.0f} s",
        f"- **Load:** 1-minute load average {min(f.load):.1f}–{max(f.load):.1f} on "
        f"{os.cpu_count()} cores",
        "",
        f"| listed in @champion | converged pass (median of {len(f.runs[0].seconds)}) | "
        "read calls | write calls | the calls |",
        "|---|---|---|---|---|",
    ]
    for r in f.runs:
        lines.append(f"| {MODELS} models + {r.prompts} prompts | {median(r.seconds):.2f} s | "
                     f"{r.reads} | {r.writes} | {_calls(r)} |")
    lines += ["", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'met' if ok else '**missed**'} |" for t, m, ok in f.targets()]
    lines += [
        "",
        f"One server: {MODELS} registered models with 2 versions each (written straight into "
        f"SQLite, `tests/support/bulk_seed.py`) and {PROMPTS} prompts with 2 versions each "
        "(`mlflow.genai.register_prompt`). One alias environment lists the models and the "
        "first N prompts at v1; a first pass puts the aliases in place, then per N one "
        "warm-up and the timed converged passes in-process, and one more pass through the "
        "CountingProxy for the calls. MLflow's searches leave prompts out unless the filter "
        "names the prompt tag, so the names the model search did not find are searched again "
        "as prompts: one search of prompts and one of their versions per chunk of up to "
        "1,000 names, whatever N is.",
        MARK_END,
    ]
    return "\n".join(lines)


def write_section(path: Path, f: PromptFigures) -> None:
    """Put this measurement's section into BENCHMARKS.md, replacing an earlier one."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = section(f)
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
