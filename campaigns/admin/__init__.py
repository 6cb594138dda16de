from campaigns.admin.templates import MessageTemplateAdmin, TemplateVersionAdmin

__all__ = ["MessageTemplateAdmin", "TemplateVersionAdmin"]
