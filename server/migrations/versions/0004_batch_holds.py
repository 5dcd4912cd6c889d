"""The batches an experience is making now, stored with it (BatchPhotosPerHour holds), so
every replica counts them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('experiences') as batch:
        batch.add_column(sa.Column('batch_holds', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('experiences') as batch:
        batch.drop_column('batch_holds')
