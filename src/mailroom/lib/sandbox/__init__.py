"""The sandbox that renders user-written email templates (Jinja2, no Django).

Template Editors write Jinja; everybody else may only use ``{{ dotted.path }}`` placeholders
(:func:`check_simple`). Both run here, on a plain-data context (dicts, lists, text, numbers,
dates; never ORM objects), so a template can only read what the caller chose to hand over.

Why the extra layers on top of Jinja's ``ImmutableSandboxedEnvironment``: the Jinja sandbox
stops attribute escapes (``__class__``) and mutation (``list.append``) but not resource abuse
(``'a' * 10**8``, ``range`` loops with empty bodies, ``"%999999999s"|format``, recursion), and
one stuck render would stall a worker sending to 10,000 recipients. So each render carries a
budget (:class:`Limits`) kept in a ``ContextVar`` (renders run concurrently in threads):

- wall time: checked at every output, filter, call and operator, every 32 loop iterations
  and every 1,024 items a filter works through;
- loop iterations, all loops together: every ``for`` iterable is wrapped in a counter when
  the template is compiled (recursive ``loop()`` calls too);
- output: counted as it is produced, including text captured by ``{% set %}``, macros,
  ``{% call %}`` and ``{% filter %}``, so it cannot be amplified out of sight;
- each string or list an expression builds (``*``, ``+``, ``%``, ``~``, literals, filters)
  is checked against ``max_string`` *before* it is built. Lists the template makes remember
  their "weight" (values reachable through them, shared ones counted each time), so
  ``[x, x]`` nested twenty deep is refused instead of printed; big integers likewise;
- everything built is also charged to a total of 3 x ``max_output``, so a template cannot
  keep thousands of pieces alive, each within ``max_string`` (one per ``{% set %}`` line);
- printing a list or an error message never builds more than ``max_string`` characters.

Decisions:

- Attributes of plain data can be read; methods can be called only from a short allowlist of
  harmless, size-preserving ones: text (``upper``, ``lower``, ``title``, ``strip``,
  ``split``, ``startswith``, ``find``, ``count``, ``is...``), dict ``keys/values/items/get``,
  list ``count``, date ``isoformat/weekday``, ``loop.cycle/changed``. Refused: ``replace``,
  ``center``, ``zfill``, ``join`` (use the size-checked filters), ``format``/``format_map``
  (they reach attributes; ``|format`` is the checked printf) and ``list.index`` (its error
  quotes the value). Nothing else in the context can be called.
- A dict key wins over a dict method of the same name: ``object.items`` is the field.
- Undefined is strict: printing, testing or using a missing name or attribute is an error
  naming the whole path and the line (``'object.partner.nam' is undefined``), never an empty
  text; ``is defined`` and ``|default`` still work. ``None`` prints as ``""`` ("None" in a
  mail is never wanted) and attributes of ``None`` are ``None``: an empty relation (no
  customer) has empty fields, as in Odoo. Before saving, :func:`unknown_paths` checks every
  path against what the context will hold, so a misspelt field is refused with the nearest
  valid names instead of failing at send time.
- ``|safe`` exists only in HTML fields and only on literal HTML written in the template;
  values from records are always escaped. ``{% autoescape %}``, ``include``/``import``/
  ``extends``, ``self``, ``varargs``/``kwargs``, ``lipsum``, ``cycler`` and ``joiner`` are
  not available. ``trim_blocks``/``lstrip_blocks`` are on, so tags leave no blank lines.
- Not covered: memory in proportion to the *context* the caller passes (sorting 100,000
  context rows makes 100,000 sort keys); the caller decides how big the context is.

Modules: ``errors`` (TemplateError), ``budget`` (the render's limits and what it has built),
``filters``, ``environment`` (code generation, allowed methods, globals), ``render`` (compile
and render), ``inspect`` (placeholders and the simple-template check for the editor) and
``paths`` (every path checked against what the context holds).
Callers import from this package only.
"""

from mailroom.lib.sandbox.budget import Limits
from mailroom.lib.sandbox.errors import TemplateError
from mailroom.lib.sandbox.inspect import check_simple, placeholders
from mailroom.lib.sandbox.paths import ANYTHING, ListOf, UnknownPath, unknown_paths
from mailroom.lib.sandbox.render import CompiledTemplate, compile_template, render_string

__all__ = ["ANYTHING", "CompiledTemplate", "Limits", "ListOf", "TemplateError", "UnknownPath",
           "check_simple", "compile_template", "placeholders", "render_string", "unknown_paths"]
