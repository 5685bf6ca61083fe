"""contacts, requirements, feasibility, market research, relationship maintenance

Existing inquiries keep working: their contacts become contact rows.

Revision ID: 7da608bd3c08
Revises: 3cd5b0f20b71
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "7da608bd3c08"
down_revision = "3cd5b0f20b71"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("lead_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=30), nullable=False),
        sa.Column("company", sa.String(length=300), nullable=False),
        sa.Column("contact", sa.String(length=300), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("inquiry_id", sa.String(length=36), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leads_status"), ["status"], unique=False)

    op.create_table(
        "market_insights",
        sa.Column("insight_id", sa.String(length=36), nullable=False),
        sa.Column("industry", sa.String(length=200), nullable=False),
        sa.Column("industry_trends", sa.Text(), nullable=False),
        sa.Column("market_demand", sa.Text(), nullable=False),
        sa.Column("competitors", sa.Text(), nullable=False),
        sa.Column("potential_clients", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("insight_id"),
    )
    with op.batch_alter_table("market_insights", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_market_insights_recorded_at"), ["recorded_at"], unique=False)

    op.create_table(
        "contacts",
        sa.Column("contact_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=300), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=False),
        sa.Column("role", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
        ),
        sa.PrimaryKeyConstraint("contact_id"),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contacts_client_id"), ["client_id"], unique=False)

    op.create_table(
        "opportunities",
        sa.Column("opportunity_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("referred_company", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
        ),
        sa.PrimaryKeyConstraint("opportunity_id"),
    )
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_opportunities_client_id"), ["client_id"], unique=False)

    op.create_table(
        "revisit_plans",
        sa.Column("plan_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revisit_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
        ),
        sa.PrimaryKeyConstraint("plan_id"),
    )
    with op.batch_alter_table("revisit_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revisit_plans_client_id"), ["client_id"], unique=False)
        batch_op.create_index("ix_revisit_plans_due", ["status", "due_date"], unique=False)

    op.create_table(
        "revisits",
        sa.Column("revisit_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("new_needs", sa.Text(), nullable=False),
        sa.Column("revisited_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
        ),
        sa.PrimaryKeyConstraint("revisit_id"),
    )
    with op.batch_alter_table("revisits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revisits_client_id"), ["client_id"], unique=False)

    op.create_table(
        "value_added_services",
        sa.Column("service_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
        ),
        sa.PrimaryKeyConstraint("service_id"),
    )
    with op.batch_alter_table("value_added_services", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_value_added_services_client_id"), ["client_id"], unique=False)

    op.create_table(
        "feasibility_assessments",
        sa.Column("feasibility_id", sa.String(length=36), nullable=False),
        sa.Column("inquiry_id", sa.String(length=36), nullable=False),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("requirements_version", sa.Integer(), nullable=False),
        sa.Column("feasible", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("assessors", sa.JSON(), nullable=False),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inquiry_id"],
            ["inquiries.inquiry_id"],
        ),
        sa.PrimaryKeyConstraint("feasibility_id"),
    )
    with op.batch_alter_table("feasibility_assessments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feasibility_assessments_engagement_id"), ["engagement_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_feasibility_assessments_inquiry_id"), ["inquiry_id"], unique=False
        )

    op.create_table(
        "requirements_documents",
        sa.Column("requirements_id", sa.String(length=36), nullable=False),
        sa.Column("inquiry_id", sa.String(length=36), nullable=False),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inquiry_id"],
            ["inquiries.inquiry_id"],
        ),
        sa.PrimaryKeyConstraint("requirements_id"),
        sa.UniqueConstraint("inquiry_id"),
    )
    with op.batch_alter_table("requirements_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_requirements_documents_engagement_id"), ["engagement_id"], unique=False
        )

    op.create_table(
        "feasibility_verdicts",
        sa.Column("feasibility_id", sa.String(length=36), nullable=False),
        sa.Column("dimension", sa.String(length=20), nullable=False),
        sa.Column("feasible", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feasibility_id"],
            ["feasibility_assessments.feasibility_id"],
        ),
        sa.PrimaryKeyConstraint("feasibility_id", "dimension"),
    )
    op.create_table(
        "requirements_versions",
        sa.Column("requirements_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("communication_mode", sa.String(length=20), nullable=False),
        sa.Column("needs", sa.Text(), nullable=False),
        sa.Column("background", sa.Text(), nullable=False),
        sa.Column("goals", sa.Text(), nullable=False),
        sa.Column("expected_results", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["requirements_id"],
            ["requirements_documents.requirements_id"],
        ),
        sa.PrimaryKeyConstraint("requirements_id", "version"),
    )
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("lead_id", sa.String(length=36), nullable=True))
        # existing inquiries were never declined
        batch_op.add_column(
            sa.Column("decline_reason", sa.String(length=30), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key("fk_inquiries_contact_id", "contacts", ["contact_id"], ["contact_id"])
    _contacts_from_inquiries()


def _contacts_from_inquiries() -> None:
    """Inquiries recorded before contacts existed name their contact: each becomes a contact of its
    client (one per client and name, as `record_inquiry` matches them), linked from the inquiry."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT inquiry_id, client_id, contact_name, contact_email, contact_phone, received_at "
            "FROM inquiries ORDER BY received_at, inquiry_id"
        )
    ).all()
    contacts: dict[tuple[str, str], str] = {}
    for row in rows:
        key = (row.client_id, row.contact_name.strip().lower())
        if key not in contacts:
            contacts[key] = str(uuid.uuid4())
            bind.execute(
                sa.text(
                    "INSERT INTO contacts (contact_id, client_id, name, email, phone, role, created_at) "
                    "VALUES (:contact_id, :client_id, :name, :email, :phone, '', :created_at)"
                ),
                {
                    "contact_id": contacts[key],
                    "client_id": row.client_id,
                    "name": row.contact_name.strip(),
                    "email": row.contact_email,
                    "phone": row.contact_phone,
                    "created_at": row.received_at,
                },
            )
        bind.execute(
            sa.text("UPDATE inquiries SET contact_id = :contact_id WHERE inquiry_id = :inquiry_id"),
            {"contact_id": contacts[key], "inquiry_id": row.inquiry_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.drop_constraint("fk_inquiries_contact_id", type_="foreignkey")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("decline_reason")
        batch_op.drop_column("lead_id")
        batch_op.drop_column("contact_id")

    op.drop_table("requirements_versions")
    op.drop_table("feasibility_verdicts")
    with op.batch_alter_table("requirements_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requirements_documents_engagement_id"))

    op.drop_table("requirements_documents")
    with op.batch_alter_table("feasibility_assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feasibility_assessments_inquiry_id"))
        batch_op.drop_index(batch_op.f("ix_feasibility_assessments_engagement_id"))

    op.drop_table("feasibility_assessments")
    with op.batch_alter_table("value_added_services", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_value_added_services_client_id"))

    op.drop_table("value_added_services")
    with op.batch_alter_table("revisits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revisits_client_id"))

    op.drop_table("revisits")
    with op.batch_alter_table("revisit_plans", schema=None) as batch_op:
        batch_op.drop_index("ix_revisit_plans_due")
        batch_op.drop_index(batch_op.f("ix_revisit_plans_client_id"))

    op.drop_table("revisit_plans")
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opportunities_client_id"))

    op.drop_table("opportunities")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contacts_client_id"))

    op.drop_table("contacts")
    with op.batch_alter_table("market_insights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_market_insights_recorded_at"))

    op.drop_table("market_insights")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leads_status"))

    op.drop_table("leads")
