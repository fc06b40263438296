"""SLA clocks: each commitment on each deal, running, met, breached or stopped

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:20:23.825224
"""

from alembic import op
import sqlalchemy as sa

import leadrelay.adapters.tables


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clocks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('commitment', sa.String(length=200), nullable=False),
    sa.Column('measure', sa.String(length=32), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=320), nullable=True),
    sa.Column('started_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('due_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('warn_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ended_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.Column('warned_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_clocks_deal_id_deals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clocks'))
    )
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clocks_deal_id'), ['deal_id'], unique=False)
        batch_op.create_index('ix_clocks_running_due_at', ['due_at'], unique=False, sqlite_where=sa.text("status = 'running'"), postgresql_where=sa.text("status = 'running'"))
        batch_op.create_index('ix_clocks_running_warn_at', ['warn_at'], unique=False, sqlite_where=sa.text("status = 'running' AND warned_at IS NULL"), postgresql_where=sa.text("status = 'running' AND warned_at IS NULL"))



def downgrade() -> None:
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.drop_index('ix_clocks_running_warn_at', sqlite_where=sa.text("status = 'running' AND warned_at IS NULL"), postgresql_where=sa.text("status = 'running' AND warned_at IS NULL"))
        batch_op.drop_index('ix_clocks_running_due_at', sqlite_where=sa.text("status = 'running'"), postgresql_where=sa.text("status = 'running'"))
        batch_op.drop_index(batch_op.f('ix_clocks_deal_id'))

    op.drop_table('clocks')
