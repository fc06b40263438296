"""Nurture: sequences' enrollments, sent emails, suppression list

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import leadrelay.adapters.tables

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('email_link_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('created_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_link_keys')),
    sa.UniqueConstraint('name', name=op.f('uq_email_link_keys_name'))
    )
    op.create_table('suppressions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('email', name=op.f('uq_suppressions_email'))
    )
    op.create_table('sequence_enrollments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sequence', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('trigger', sa.String(length=64), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('enrolled_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('next_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('exit_reason', sa.String(length=32), nullable=True),
    sa.Column('last_email_step', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_sequence_enrollments_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sequence_enrollments'))
    )
    with op.batch_alter_table('sequence_enrollments', schema=None) as batch_op:
        batch_op.create_index('ix_sequence_enrollments_due', ['next_at'], unique=False, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))
        batch_op.create_index('ix_sequence_enrollments_lead_id_sequence', ['lead_id', 'sequence'], unique=False)
        batch_op.create_index('ix_sequence_enrollments_sequence', ['sequence', 'status'], unique=False)
        batch_op.create_index('uq_sequence_enrollments_active_kind', ['lead_id', 'kind'], unique=True, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    op.create_table('email_sends',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('enrollment_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('sequence', sa.String(length=64), nullable=True),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('queued_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('cancel_reason', sa.String(length=64), nullable=True),
    sa.Column('opens', sa.Integer(), nullable=False),
    sa.Column('clicks', sa.Integer(), nullable=False),
    sa.Column('opened_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('clicked_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('bounced_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('complained_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['enrollment_id'], ['sequence_enrollments.id'], name=op.f('fk_email_sends_enrollment_id_sequence_enrollments')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_email_sends_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_sends')),
    sa.UniqueConstraint('key', name=op.f('uq_email_sends_key'))
    )
    with op.batch_alter_table('email_sends', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_sends_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index('ix_email_sends_queued_at', ['queued_at'], unique=False)
        batch_op.create_index('ix_email_sends_sequence_step', ['sequence', 'step'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('email_sends', schema=None) as batch_op:
        batch_op.drop_index('ix_email_sends_sequence_step')
        batch_op.drop_index('ix_email_sends_queued_at')
        batch_op.drop_index(batch_op.f('ix_email_sends_lead_id'))

    op.drop_table('email_sends')
    with op.batch_alter_table('sequence_enrollments', schema=None) as batch_op:
        batch_op.drop_index('uq_sequence_enrollments_active_kind', sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))
        batch_op.drop_index('ix_sequence_enrollments_sequence')
        batch_op.drop_index('ix_sequence_enrollments_lead_id_sequence')
        batch_op.drop_index('ix_sequence_enrollments_due', sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))

    op.drop_table('sequence_enrollments')
    op.drop_table('suppressions')
    op.drop_table('email_link_keys')
