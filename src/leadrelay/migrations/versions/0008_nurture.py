"""Nurture: sequences' enrollments, sent emails, suppression list

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

import leadrelay.adapters.tables


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
