"""tracking: API keys, rejected messages, touches, accounts by group

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa

import leadrelay.adapters.tables


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_table('rejected_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('received_at', leadrelay.adapters.tables.UtcDateTime(timezone=True), nullable=False),
    sa.Column('api_key_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_rejected_messages_api_key_id_api_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rejected_messages'))
    )
    with op.batch_alter_table('rejected_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rejected_messages_received_at'), ['received_at'], unique=False)

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('traits', sa.JSON(), nullable=True))
        batch_op.alter_column('domain',
               existing_type=sa.VARCHAR(length=255),
               nullable=True)
        batch_op.create_unique_constraint(batch_op.f('uq_accounts_group_id'), ['group_id'])

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('touch', sa.JSON(), nullable=True))

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('first_touch', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('last_touch', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_leads_source'), ['source'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_source'))
        batch_op.drop_column('last_touch')
        batch_op.drop_column('first_touch')
        batch_op.drop_column('source')

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('touch')

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_accounts_group_id'), type_='unique')
        batch_op.alter_column('domain',
               existing_type=sa.VARCHAR(length=255),
               nullable=False)
        batch_op.drop_column('traits')
        batch_op.drop_column('group_id')

    with op.batch_alter_table('rejected_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rejected_messages_received_at'))

    op.drop_table('rejected_messages')
    op.drop_table('api_keys')
