"""Predictive models: trained, versioned models and their scores

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import leadrelay.adapters.tables

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
Time = leadrelay.adapters.tables.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('models',
    sa.Column('id', Id, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', Time, nullable=False),
    sa.Column('created_by', sa.String(length=320), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('artifact', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models')),
    sa.UniqueConstraint('kind', 'version', name='uq_models_kind_version')
    )
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.create_index('uq_models_active_kind', ['kind'], unique=True,
                              sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))

    op.create_table('lead_scores',
    sa.Column('lead_id', Id, autoincrement=False, nullable=False),
    sa.Column('model_id', Id, nullable=False),
    sa.Column('p_win', sa.Float(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('scored_at', Time, nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_scores_lead_id_leads')),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_lead_scores_model_id_models')),
    sa.PrimaryKeyConstraint('lead_id', name=op.f('pk_lead_scores'))
    )
    with op.batch_alter_table('lead_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_scores_model_id'), ['model_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lead_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_scores_model_id'))
    op.drop_table('lead_scores')
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_index('uq_models_active_kind')
    op.drop_table('models')
