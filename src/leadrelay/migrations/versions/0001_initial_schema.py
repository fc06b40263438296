"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

import leadrelay.adapters.tables


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('is_target', sa.Boolean(), nullable=False),
    sa.Column('created_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('domain', name=op.f('uq_accounts_domain'))
    )
    op.create_table('leads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('highest_stage', sa.String(length=64), nullable=False),
    sa.Column('stage_entered_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('fit', sa.Float(), nullable=False),
    sa.Column('fit_breakdown', sa.JSON(), nullable=False),
    sa.Column('engagement', sa.Float(), nullable=False),
    sa.Column('engagement_as_of', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('engagement_rules', sa.JSON(), nullable=False),
    sa.Column('owner', sa.String(length=320), nullable=True),
    sa.Column('merged_into', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_leads_account_id_accounts')),
    sa.ForeignKeyConstraint(['merged_into'], ['leads.id'], name=op.f('fk_leads_merged_into_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads')),
    sa.UniqueConstraint('email', name=op.f('uq_leads_email'))
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leads_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_leads_stage', ['stage', 'merged_into'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('anonymous_id', sa.String(length=255), nullable=True),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('timestamp', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('received_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('properties', sa.JSON(), nullable=False),
    sa.Column('traits', sa.JSON(), nullable=True),
    sa.Column('points', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_events_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('message_id', name=op.f('uq_events_message_id'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_waiting_anonymous_id', ['anonymous_id'], unique=False,
                              sqlite_where=sa.text('lead_id IS NULL'), postgresql_where=sa.text('lead_id IS NULL'))
        batch_op.create_index('ix_events_lead_id_timestamp', ['lead_id', 'timestamp'], unique=False,
                              sqlite_where=sa.text('lead_id IS NOT NULL'), postgresql_where=sa.text('lead_id IS NOT NULL'))
        batch_op.create_index('ix_events_waiting_user_id', ['user_id'], unique=False,
                              sqlite_where=sa.text('lead_id IS NULL'), postgresql_where=sa.text('lead_id IS NULL'))

    op.create_table('identities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_identities_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identities')),
    sa.UniqueConstraint('kind', 'value', name='uq_identities_kind_value')
    )
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identities_lead_id'), ['lead_id'], unique=False)

    op.create_table('stage_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_stage', sa.String(length=64), nullable=True),
    sa.Column('to_stage', sa.String(length=64), nullable=False),
    sa.Column('at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_stage_changes_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stage_changes'))
    )
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stage_changes_lead_id'), ['lead_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('stage_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stage_changes_lead_id'))

    op.drop_table('stage_changes')
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identities_lead_id'))

    op.drop_table('identities')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_waiting_user_id', sqlite_where=sa.text('lead_id IS NULL'), postgresql_where=sa.text('lead_id IS NULL'))
        batch_op.drop_index('ix_events_lead_id_timestamp', sqlite_where=sa.text('lead_id IS NOT NULL'), postgresql_where=sa.text('lead_id IS NOT NULL'))
        batch_op.drop_index('ix_events_waiting_anonymous_id', sqlite_where=sa.text('lead_id IS NULL'), postgresql_where=sa.text('lead_id IS NULL'))

    op.drop_table('events')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_stage')
        batch_op.drop_index(batch_op.f('ix_leads_account_id'))

    op.drop_table('leads')
    op.drop_table('accounts')
