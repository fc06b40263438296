"""Analytics: what the funnel, velocity, sources and content reports read

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

import leadrelay.adapters.tables


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
Time = leadrelay.adapters.tables.UtcDateTime(timezone=True)
TOUCHED = "touch IS NOT NULL AND lead_id IS NOT NULL"
MERGED = "merged_into IS NOT NULL"
OPEN = "closed_at IS NULL"


def upgrade() -> None:
    op.create_table('content_items',
    sa.Column('id', Id, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=500), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('created_at', Time, nullable=False),
    sa.Column('archived_at', Time, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_items')),
    sa.UniqueConstraint('kind', 'key', name='uq_content_items_kind_key')
    )
    op.create_table('content_shares',
    sa.Column('id', Id, nullable=False),
    sa.Column('item_id', Id, nullable=False),
    sa.Column('lead_id', Id, nullable=False),
    sa.Column('deal_id', Id, nullable=True),
    sa.Column('by', sa.String(length=320), nullable=False),
    sa.Column('at', Time, nullable=False),
    sa.Column('logged_at', Time, nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_content_shares_deal_id_deals')),
    sa.ForeignKeyConstraint(['item_id'], ['content_items.id'], name=op.f('fk_content_shares_item_id_content_items')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_content_shares_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_content_shares'))
    )
    op.create_index(op.f('ix_content_shares_lead_id'), 'content_shares', ['lead_id'], unique=False)
    op.create_index('ix_content_shares_at', 'content_shares', ['at'], unique=False)
    op.create_index('ix_content_shares_item_id_at', 'content_shares', ['item_id', 'at'], unique=False)

    op.create_table('lead_facts',
    sa.Column('lead_id', Id, autoincrement=False, nullable=False),
    sa.Column('created_at', Time, nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('medium', sa.String(length=200), nullable=True),
    sa.Column('campaign', sa.String(length=500), nullable=True),
    sa.Column('segment', sa.String(length=32), nullable=True),
    sa.Column('team', sa.String(length=64), nullable=True),
    sa.Column('rep', sa.String(length=320), nullable=True),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('highest_stage', sa.String(length=64), nullable=False),
    sa.Column('handed_off_at', Time, nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('closed_at', Time, nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('cycle_seconds', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_facts_lead_id_leads')),
    sa.PrimaryKeyConstraint('lead_id', name=op.f('pk_lead_facts'))
    )
    op.create_index('ix_lead_facts_created_at', 'lead_facts', ['created_at', 'highest_stage', 'stage', 'source', 'medium',
                    'campaign', 'segment', 'team', 'rep', 'value'], unique=False)
    op.create_index('ix_lead_facts_closed_at', 'lead_facts', ['closed_at', 'outcome', 'cycle_seconds', 'lead_id'],
                    unique=False)

    op.create_table('stage_spans',
    sa.Column('id', Id, nullable=False),
    sa.Column('lead_id', Id, nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('entered_at', Time, nullable=False),
    sa.Column('left_at', Time, nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('next_stage', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('lead_created_at', Time, nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_stage_spans_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stage_spans'))
    )
    op.create_index(op.f('ix_stage_spans_lead_id'), 'stage_spans', ['lead_id'], unique=False)
    op.create_index('ix_stage_spans_left_at', 'stage_spans', ['left_at', 'stage', 'seconds'], unique=False)
    op.create_index('ix_stage_spans_exits', 'stage_spans', ['next_stage', 'lead_created_at', 'stage', 'reason'],
                    unique=False)

    op.create_table('stage_reached',
    sa.Column('lead_id', Id, autoincrement=False, nullable=False),
    sa.Column('stage', sa.String(length=64), nullable=False),
    sa.Column('at', Time, nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_stage_reached_lead_id_leads')),
    sa.PrimaryKeyConstraint('lead_id', 'stage', name=op.f('pk_stage_reached'))
    )
    op.create_index('ix_stage_reached_stage_at', 'stage_reached', ['stage', 'at'], unique=False)

    op.create_table('attribution',
    sa.Column('id', Id, nullable=False),
    sa.Column('lead_id', Id, nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('at', Time, nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.Column('medium', sa.String(length=200), nullable=True),
    sa.Column('campaign', sa.String(length=500), nullable=True),
    sa.Column('first_share', sa.Float(), nullable=False),
    sa.Column('last_share', sa.Float(), nullable=False),
    sa.Column('linear_share', sa.Float(), nullable=False),
    sa.Column('w_shaped_share', sa.Float(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_attribution_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attribution'))
    )
    op.create_index(op.f('ix_attribution_lead_id'), 'attribution', ['lead_id'], unique=False)
    op.create_index('ix_attribution_outcome_at', 'attribution', ['outcome', 'at', 'source', 'medium', 'campaign',
                    'first_share', 'last_share', 'linear_share', 'w_shaped_share', 'value'], unique=False)

    op.create_table('lead_content',
    sa.Column('lead_id', Id, autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=500), nullable=False),
    sa.Column('first_at', Time, nullable=False),
    sa.Column('times', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_content_lead_id_leads')),
    sa.PrimaryKeyConstraint('lead_id', 'kind', 'key', name=op.f('pk_lead_content'))
    )
    op.create_table('analytics_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', Time, nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_analytics_state'))
    )

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_touched_lead_id', ['lead_id', 'timestamp'], unique=False,
                              sqlite_where=sa.text(TOUCHED), postgresql_where=sa.text(TOUCHED))
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index('ix_leads_merged_into', ['merged_into'], unique=False,
                              sqlite_where=sa.text(MERGED), postgresql_where=sa.text(MERGED))
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.create_index('ix_deals_opened_at', ['opened_at'], unique=False)
        batch_op.create_index('ix_deals_open_stage_entered_at', ['stage', 'stage_entered_at'], unique=False,
                              sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.create_index('ix_clocks_started_at', ['started_at', 'commitment', 'team', 'owner', 'status'],
                              unique=False)
        batch_op.create_index('ix_clocks_ended_at', ['ended_at', 'status', 'measure', 'started_at'], unique=False)
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.create_index('ix_touches_deal_id_kind_at', ['deal_id', 'kind', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('touches', schema=None) as batch_op:
        batch_op.drop_index('ix_touches_deal_id_kind_at')
    with op.batch_alter_table('clocks', schema=None) as batch_op:
        batch_op.drop_index('ix_clocks_ended_at')
        batch_op.drop_index('ix_clocks_started_at')
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.drop_index('ix_deals_open_stage_entered_at', sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.drop_index('ix_deals_opened_at')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_merged_into', sqlite_where=sa.text(MERGED), postgresql_where=sa.text(MERGED))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_touched_lead_id', sqlite_where=sa.text(TOUCHED),
                            postgresql_where=sa.text(TOUCHED))
    op.drop_table('analytics_state')
    op.drop_table('lead_content')
    op.drop_index('ix_attribution_outcome_at', table_name='attribution')
    op.drop_index(op.f('ix_attribution_lead_id'), table_name='attribution')
    op.drop_table('attribution')
    op.drop_index('ix_stage_reached_stage_at', table_name='stage_reached')
    op.drop_table('stage_reached')
    op.drop_index('ix_stage_spans_exits', table_name='stage_spans')
    op.drop_index('ix_stage_spans_left_at', table_name='stage_spans')
    op.drop_index(op.f('ix_stage_spans_lead_id'), table_name='stage_spans')
    op.drop_table('stage_spans')
    op.drop_index('ix_lead_facts_closed_at', table_name='lead_facts')
    op.drop_index('ix_lead_facts_created_at', table_name='lead_facts')
    op.drop_table('lead_facts')
    op.drop_index('ix_content_shares_item_id_at', table_name='content_shares')
    op.drop_index('ix_content_shares_at', table_name='content_shares')
    op.drop_index(op.f('ix_content_shares_lead_id'), table_name='content_shares')
    op.drop_table('content_shares')
    op.drop_table('content_items')
