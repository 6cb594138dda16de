class TemplateError(Exception):
    """A template that cannot be rendered: bad syntax, an unknown variable, a sandbox violation.

    ``field`` is the part of the message (subject, html, body, …), ``line`` the line in that
    field's source when known.
    """

    def __init__(
        self, message: str, *, field: str = "", line: int | None = None, locale: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.line = line
        self.locale = locale

    def __str__(self) -> str:
        where = self.field or "template"
        if self.locale:
            where = f"{where} [{self.locale}]"
        if self.line is not None:
            where = f"{where}, line {self.line}"
        return f"{where}: {self.message}"
