"""MkDocs hook: the pages link to repository files outside docs/ (results/, configs/, CONTRIBUTING.md).

Those links are written relative to the page (`../results/bench/bench.md`), so they work on GitHub.
For the built site, every such target that exists is copied under `repo/` (as a plain file, not a
page) and MkDocs rewrites the link to it; a target that does not exist is left out, so MkDocs
reports the broken link, which `mkdocs build --strict` turns into a failure.
"""

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files, InclusionLevel

LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


class RepositoryFile(File):
    """A repository file outside docs/, copied as is (Markdown included: it is not built as a page)."""

    def is_documentation_page(self) -> bool:
        return False


def on_files(files: Files, config) -> Files:  # noqa: ANN001 - the MkDocs hook signature
    docs_dir = Path(config.docs_dir).resolve()
    repository = docs_dir.parent
    for page in list(files.documentation_pages()):
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if "://" in target:
                continue
            uri = posixpath.normpath(posixpath.join(posixpath.dirname(page.src_uri), target))
            path = (docs_dir / uri).resolve()
            if not uri.startswith("../") or files.get_file_from_path(uri) is not None or not path.is_file():
                continue
            if repository not in path.parents:
                continue
            destination = "repo/" + path.relative_to(repository).as_posix()
            copy = RepositoryFile(uri, str(docs_dir), config.site_dir, config.use_directory_urls, dest_uri=destination,
                                  inclusion=InclusionLevel.INCLUDED)
            files.append(copy)
    return files
