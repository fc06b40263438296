"""hand-off: deals, routing, tasks, webhooks, outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:37:34.451237
"""

from alembic import op
import sqlalchemy as sa

import leadrelay.adapters.tables


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reps',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('away_until', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('inactive', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('updated_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reps')),
    sa.UniqueConstraint('email', name=op.f('uq_reps_email'))
    )
    op.create_table('seats',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('last_turn', sa.Float(), nullable=True),
    sa.Column('assigned', sa.Integer(), nullable=False),
    sa.Column('last_assigned_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_seats')),
    sa.UniqueConstraint('team', 'email', name='uq_seats_team_email')
    )
    op.create_table('webhooks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('event', sa.String(length=100), nullable=False),
    sa.Column('webhook_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], name=op.f('fk_outbox_webhook_id_webhooks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('key', name=op.f('uq_outbox_key'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_webhook_id'), ['webhook_id'], unique=False)

    op.create_table('deals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=320), nullable=True),
    sa.Column('opened_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('stage_entered_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('assigned_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('close_reason', sa.Text(), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('routed_by', sa.Text(), nullable=False),
    sa.Column('package', sa.JSON(), nullable=False),
    sa.Column('updated_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_deals_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deals'))
    )
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.create_index('ix_deals_lead_id', ['lead_id'], unique=False)
        batch_op.create_index('ix_deals_owner_closed_at', ['owner', 'closed_at'], unique=False)
        batch_op.create_index('ix_deals_owner_assigned_at', ['owner', 'assigned_at'], unique=False)
        batch_op.create_index('ix_deals_stage', ['stage', 'closed_at'], unique=False)
        batch_op.create_index('uq_deals_open_lead_id', ['lead_id'], unique=True, sqlite_where=sa.text('closed_at IS NULL'), postgresql_where=sa.text('closed_at IS NULL'))

    op.create_table('deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('outbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_deliveries_outbox_id_outbox')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_outbox_id'), ['outbox_id'], unique=False)

    op.create_table('deal_activity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('from_stage', sa.String(length=64), nullable=True),
    sa.Column('to_stage', sa.String(length=64), nullable=True),
    sa.Column('owner', sa.String(length=320), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_deal_activity_deal_id_deals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal_activity'))
    )
    with op.batch_alter_table('deal_activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deal_activity_deal_id'), ['deal_id'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('owner', sa.String(length=320), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('due_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('done_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('automation', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_tasks_deal_id_deals')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_tasks_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks'))
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tasks_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index('ix_tasks_owner_done_at', ['owner', 'done_at'], unique=False)

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=320), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('owner')

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_owner_done_at')
        batch_op.drop_index(batch_op.f('ix_tasks_lead_id'))

    op.drop_table('tasks')
    with op.batch_alter_table('deal_activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deal_activity_deal_id'))

    op.drop_table('deal_activity')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_outbox_id'))

    op.drop_table('deliveries')
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.drop_index('uq_deals_open_lead_id', sqlite_where=sa.text('closed_at IS NULL'), postgresql_where=sa.text('closed_at IS NULL'))
        batch_op.drop_index('ix_deals_stage')
        batch_op.drop_index('ix_deals_owner_closed_at')
        batch_op.drop_index('ix_deals_owner_assigned_at')
        batch_op.drop_index('ix_deals_lead_id')

    op.drop_table('deals')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_webhook_id'))
        batch_op.drop_index('ix_outbox_due')

    op.drop_table('outbox')
    op.drop_table('webhooks')
    op.drop_table('seats')
    op.drop_table('reps')
