"""Web app: users, their login sessions, and the playbook's version history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

import leadrelay.adapters.tables


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
