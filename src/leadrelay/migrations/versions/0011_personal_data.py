"""Personal data: erasure and retention

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import leadrelay.adapters.tables

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('erasures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('erased_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('erased_by', sa.String(length=320), nullable=False),
    sa.Column('removed', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_erasures_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasures')),
    sa.UniqueConstraint('lead_id', name=op.f('uq_erasures_lead_id'))
    )


def downgrade() -> None:
    op.drop_table('erasures')
