"""touches: calls, emails, meetings and notes reps log on deals

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:13:01.116081
"""

from alembic import op
import sqlalchemy as sa

import leadrelay.adapters.tables


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('touches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('deal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('logged_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=320), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_touches_deal_id_deals')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_touches_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_touches'))
    )
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.create_index('ix_touches_deal_id_at', ['deal_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_touches_lead_id'), ['lead_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_touches_lead_id'))
        batch_op.drop_index('ix_touches_deal_id_at')

    op.drop_table('touches')
