from campaigns.admin.broadcasts import CampaignAdmin, MessageAdmin
from campaigns.admin.templates import MessageTemplateAdmin, TemplateVersionAdmin

__all__ = ["CampaignAdmin", "MessageAdmin", "MessageTemplateAdmin", "TemplateVersionAdmin"]
