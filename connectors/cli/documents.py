"""`docent ingest` and `docent docs list|remove`: documents through the shared admin operations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.table import Table

from connectors.cli.common import (
    DEFAULT_SCOPE,
    SCOPE_HELP,
    app,
    cli_actor,
    console,
    docs_app,
    err,
    open_docent,
    open_records,
    parse_scope,
    progress_bar,
)


@dataclass(frozen=True)
class FileToIngest:
    path: Path
    name: str  # the document's name in its scope: path relative to the folder given, or the file name


def files_to_ingest(paths: list[Path]) -> tuple[list[FileToIngest], list[str]]:
    """Every supported file under `paths`, named by its path relative to the folder it was found
    in (so `a/index.md` and `b/index.md` stay two documents); names given twice are reported
    and only the first file keeps the name."""
    from knowledge.loaders import SUPPORTED_EXTENSIONS

    found: list[FileToIngest] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file() and x.suffix.lower() in SUPPORTED_EXTENSIONS):
                found.append(FileToIngest(f, f.relative_to(p).as_posix()))
        elif p.exists():
            found.append(FileToIngest(p, p.name))
        else:
            raise typer.BadParameter(f"{p} does not exist")
    unique: dict[str, FileToIngest] = {}
    collisions: list[str] = []
    for f in found:
        first = unique.setdefault(f.name, f)
        if first is not f and first.path.resolve() != f.path.resolve():
            collisions.append(f"{f.path}: skipped — {first.path} is already ingested under the same name “{f.name}”")
    return list(unique.values()), collisions


@dataclass(frozen=True)
class IngestSummary:
    files: int
    changed: int
    chunks: int
    errors: tuple[str, ...]


def ingest_files(docent, files: list[FileToIngest], scope, *, show_progress: bool = True) -> IngestSummary:
    """Ingest files through the shared admin operation: one `upload_many`, so small files share
    embedding batches; a file that fails is reported and the rest go on."""
    from admin.operations import UploadItem, UploadOutcome

    actor = cli_actor(scope.workspace)
    changed = chunks = 0
    errors: list[str] = []
    with progress_bar() if show_progress else _NullProgress() as progress:
        task = progress.add_task("ingesting", total=len(files))

        def done(outcome: UploadOutcome) -> None:
            nonlocal changed, chunks
            report, e = outcome.report, outcome.error
            if report is not None:
                changed += int(report.changed)
                chunks += report.record.chunks if report.changed else 0
                if report.findings:
                    errors.append(f"{outcome.name}: flagged — possible embedded instructions: {report.findings[0][:120]!r}")
            elif isinstance(e, OSError):  # unreadable file: report it, keep going with the rest
                errors.append(f"{outcome.name}: can't be read ({e.strerror or e})")
            else:
                errors.append(str(e))
            progress.update(task, description=f"ingesting {outcome.name[-40:]}")
            progress.advance(task)

        docent.admin.upload_many(actor, [UploadItem(f.name, f.path.read_bytes) for f in files], scope, on_done=done)
    return IngestSummary(len(files), changed, chunks, tuple(errors))


class _NullProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass

    def advance(self, *a, **k):
        pass


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (PDF, DOCX, TXT, Markdown, HTML)."),
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP),
):
    """Add documents (re-ingesting a changed file replaces it; an unchanged one is skipped).

    Files in a folder are named by their path inside it (`travel/index.md`)."""
    sc = parse_scope(scope)
    files, collisions = files_to_ingest(paths)
    with open_docent(command="docent ingest") as docent:
        summary = ingest_files(docent, files, sc)
    total = len(files) + len(collisions)
    console.print(
        f"[green]{summary.changed}[/] of {total} documents ingested or updated ({summary.chunks} chunks) into [cyan]{sc}[/]."
    )
    for e in (*collisions, *summary.errors):
        err.print(f"[red]✗[/] {e}")
    failed = len(summary.errors) + len(collisions)
    raise typer.Exit(1 if failed and not summary.changed and failed >= total else 0)


@docs_app.command("list")
def docs_list(
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP),
    as_json: bool = typer.Option(False, "--json"),
):
    """List the documents visible in a scope."""
    sc = parse_scope(scope)
    with open_records() as admin:
        records = admin.list_documents(sc)
    if as_json:
        from dataclasses import asdict

        print(json.dumps([asdict(r) for r in records], default=str, indent=2))
        return
    table = Table("name", "scope", "pages", "chunks", "size", "uploaded", "flags")
    for r in records:
        table.add_row(
            r.name, f"{r.workspace}/{r.channel}", str(r.pages or "—"), str(r.chunks),
            f"{r.size_bytes / 1024:.0f} KB", str(r.uploaded_at)[:16],
            ("quarantined" if r.quarantined else "flagged" if r.flagged else ""),
        )
    console.print(table)


@docs_app.command("remove")
def docs_remove(
    name: str = typer.Argument(..., help="Document name (as `docs list` shows it) to remove."),
    scope: str = typer.Option(DEFAULT_SCOPE, "--scope", "-s", help=SCOPE_HELP),
):
    """Remove a document from a scope."""
    from admin.types import NotFound

    sc = parse_scope(scope)
    with open_docent(command="docent docs remove") as docent:
        try:
            record = docent.admin.remove(cli_actor(sc.workspace), sc, name)
        except NotFound as e:
            err.print(str(e))
            raise typer.Exit(1)
    console.print(f"Removed [bold]{record.name}[/] ({record.chunks} chunks) from {sc}.")
