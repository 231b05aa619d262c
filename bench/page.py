"""`python -m bench.page`: how long the web page takes to render on the server at 1,000
models. The page's real code (Jinja2 templates, the
grid, the timeline from a real git repository through GitSource); only the controller's
pass is replaced by its values (desired state, a live snapshot, the plan and status rows),
so the figure is the page's own cost. Prints one line per figure."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = "apiVersion: mlflow-gitops/v1\nkind: Environment\n"
TARGETS = {"staging": "stage: Staging", "production": "stage: Production",
           "canary": "alias: champion"}


def env_texts(models: int, shift: int) -> dict[str, str]:
    """Three environments listing every model; `shift` moves the versions (a new commit)."""
    out = {}
    for n, (env, target) in enumerate(TARGETS.items()):
        lines = "".join(f"  model-{m:04d}: {1 + (m + shift + n) % 5}\n" for m in range(models))
        kind, value = target.split(": ")
        out[f"environments/{env}.yaml"] = HEADER + f"target:\n  {kind}: {value}\nmodels:\n{lines}"
    return out


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=b@example.com",
                           *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def repository(root: Path, models: int, commits: int) -> Path:
    """A bare remote whose main has `commits` merges, each changing one version per
    environment file (the realistic shape: small pull requests on big files)."""
    work = root / "work"
    (work / "environments").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    texts = env_texts(models, 0)
    for path, text in texts.items():
        (work / path).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "initial")
    for n in range(1, commits + 1):
        git(work, "checkout", "-q", "-b", f"pr-{n}")
        for path in texts:
            lines = (work / path).read_text().splitlines(keepends=True)
            i = len(lines) - models + (n * 7) % models
            name, version = lines[i].split(": ")
            lines[i] = f"{name}: {int(version) % 5 + 1}\n"
            (work / path).write_text("".join(lines))
        git(work, "commit", "-qam", f"change {n}")
        git(work, "checkout", "-q", "main")
        git(work, "merge", "-q", "--no-ff", f"pr-{n}", "-m", f"Merge pull request #{n}")
    bare = root / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


def timed(fn, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.page", description=__doc__)
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--versions", type=int, default=5)
    p.add_argument("--commits", type=int, default=50, help="merged pull requests in git")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)

    from mlflow_gitops.adapters.git.source import GitSource
    from mlflow_gitops.adapters.page import Page
    from mlflow_gitops.core.model import LiveModel, LiveVersion, Snapshot, frozen_map
    from mlflow_gitops.desired.loader import load_texts
    from mlflow_gitops.planning.overview import PageData
    from mlflow_gitops.planning.planner import plan
    from mlflow_gitops.planning.status import environment_status

    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp:
        bare = repository(Path(tmp), args.models, args.commits)
        source = GitSource(f"file://{bare}", "main", "environments", Path(tmp) / "cache")
        sha = source.fetch()
        desired, _ = load_texts(source.read_environment_files(sha), commit=sha)
        assert desired is not None
        models = {}
        for m in range(args.models):
            name = f"model-{m:04d}"
            stages = {1 + (m + 1) % 5: "Production", 1 + m % 5: "Staging"}
            models[name] = LiveModel(name, frozen_map({
                v: LiveVersion(name, v, stages.get(v, "None"),
                               tags=frozen_map({"gitops.env.production": sha}))
                for v in range(1, args.versions + 1)}), frozen_map({"champion": 1}))
        snapshots = {"default": Snapshot("default", frozen_map(models))}
        the_plan = plan(desired, snapshots)
        data = PageData(rows=tuple(environment_status(desired, snapshots, the_plan)),
                        desired=desired, snapshots=snapshots, plan=the_plan,
                        last_seen_commit=sha, last_applied_commit=sha)
        reader = GitSource(f"file://{bare}", "main", "environments", Path(tmp) / "cache")
        page = Page(lambda: data, repo_url="https://github.com/acme/envs.git", history=reader,
                    history_wait=600)  # measure the whole first read, not the early answer

        first = timed(lambda: page.render("/models/model-0007"), 1)
        index = timed(lambda: page.render("/"), args.repeats)
        size = len(page.render("/")[1])
        cached = timed(lambda: page.render("/models/model-0007"), args.repeats)
        other = timed(lambda: page.render("/models/model-0500"), 1)
        source.close()
        reader.close()
    print(f"page at {args.models} models × {len(TARGETS)} environments "
          f"({len(data.rows)} cells), {args.commits} merged commits of 3 files:")
    print(f"  GET /                       median {statistics.median(index):6.0f} ms  "
          f"max {max(index):6.0f} ms  ({size // 1024} KB of HTML)")
    print(f"  GET /models/<m>, cold       {first[0]:6.0f} ms  (reads and parses the git history "
          "once; `/` starts it in the background and a model page waits at most 3 s)")
    print(f"  GET /models/<other>         {other[0]:6.0f} ms  (history parsed: its own timeline)")
    print(f"  GET /models/<m> again       median {statistics.median(cached):6.0f} ms  "
          "(timeline cached per commit)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
