"""Swedish press-release and blog mining pipeline.

Stages, one package each: ``crawl`` (fetch and archive pages), ``extract`` (title, date,
author, main text), ``nlp`` (named entities and themes), ``store`` (SQLite) and ``serve``
(Datasette). ``batch`` runs them in order; ``cli`` is the thin command-line front.
"""

__version__ = "0.1.0"
