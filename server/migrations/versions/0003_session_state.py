"""A session's whole state in its row (reservations in flight, the disconnect deadline, the
selfie counters), so any replica can rebuild the session pool from the database.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sessions') as batch:
        batch.add_column(sa.Column('reserved', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('disconnect_deadline', sa.Float(), nullable=True))
        batch.add_column(sa.Column('uploads', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('upload_bytes', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('sessions') as batch:
        batch.drop_column('upload_bytes')
        batch.drop_column('uploads')
        batch.drop_column('disconnect_deadline')
        batch.drop_column('reserved')
