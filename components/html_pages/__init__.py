"""The pipeline's HTML pages: Jinja2 templates (templates/, installed with the
package) rendered with autoescaping, and pictures inlined as data: URIs so
that each page is one self-contained file (KFP's UI shows an HTML artifact
from its file alone)."""
import jinja2

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("components.html_pages", "templates"),
    autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined)


def render(template_name: str, **context) -> str:
    return _ENVIRONMENT.get_template(template_name).render(**context)


def load_all() -> list:
    """Loads every template, so that an install missing one fails here (the
    image build calls it); returns their names."""
    names = _ENVIRONMENT.list_templates(extensions=["html"])
    if not names:
        raise FileNotFoundError("no HTML templates installed with components.html_pages")
    for name in names:
        _ENVIRONMENT.get_template(name)
    return names
