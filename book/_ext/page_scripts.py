"""Include each script once per page.

sphinx-thebe registers its inline configuration (``const THEBE_JS_URL = ...``) twice in a
Jupyter Book build; the second copy throws "Identifier 'THEBE_JS_URL' has already been
declared" on every page. This drops any script whose address and attributes (an inline
script's body included) repeat an earlier one.
"""

from __future__ import annotations


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {})  # an inline script: its body, no filename
    return str(getattr(script, "filename", script) or ""), tuple(sorted(attributes.items()))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        if (key := _key(script)) not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: the list is the builder's own


def setup(app):
    # First: the event stops at the first handler that returns a template name.
    app.connect("html-page-context", drop_duplicate_scripts, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
