"""An experience's previous API key (its hash) and until when it still authenticates, so
``acs admin rotate-key`` can give game servers a grace period to switch to the new key.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('experiences') as batch:
        batch.add_column(sa.Column('previous_key_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('previous_key_until', sa.Float(), nullable=True))
        batch.create_index('ix_experiences_previous_key_hash', ['previous_key_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('experiences') as batch:
        batch.drop_index('ix_experiences_previous_key_hash')
        batch.drop_column('previous_key_until')
        batch.drop_column('previous_key_hash')
