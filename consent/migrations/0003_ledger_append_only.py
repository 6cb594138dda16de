"""The database itself keeps the ledger append-only.

Rows are never deleted. An update may only move rows to another customer (an alias
merge folds profiles) or, inside an erasure (which sets ``consent.erasure``), replace the
evidence with its stripped form. Anything else is refused by PostgreSQL, whatever the code
path: a bug, a shell session, a future migration.
"""

from django.db import migrations

GUARD = """
CREATE FUNCTION consent_ledger_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the consent ledger is append-only: rows are never deleted';
    END IF;
    IF (NEW.id, NEW.channel, NEW.topic_id, NEW.action, NEW.source, NEW.actor,
        NEW.occurred_at, NEW.recorded_at)
       IS DISTINCT FROM
       (OLD.id, OLD.channel, OLD.topic_id, OLD.action, OLD.source, OLD.actor,
        OLD.occurred_at, OLD.recorded_at) THEN
        RAISE EXCEPTION 'the consent ledger is append-only: rows are never changed';
    END IF;
    IF NEW.evidence IS DISTINCT FROM OLD.evidence
       AND coalesce(current_setting('consent.erasure', true), '') <> 'on' THEN
        RAISE EXCEPTION 'consent evidence changes only by erasure';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER consent_ledger_append_only
BEFORE UPDATE OR DELETE ON consent_consentevent
FOR EACH ROW EXECUTE FUNCTION consent_ledger_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS consent_ledger_append_only ON consent_consentevent;
DROP FUNCTION IF EXISTS consent_ledger_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_transactional_topic")]

    operations = [migrations.RunSQL(GUARD, UNGUARD)]
