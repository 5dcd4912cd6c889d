"""Custom preview styles (CreateStyle): the styles and, until each is fitted, its example images.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('styles',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('experience_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('portraits', sa.Boolean(), nullable=False),
    sa.Column('examples', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('fitter', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.Float(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('fitted_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_styles_experience_id'), 'styles', ['experience_id'], unique=False)
    op.create_index(op.f('ix_styles_state'), 'styles', ['state'], unique=False)
    op.create_table('style_examples',
    sa.Column('style_id', sa.String(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('style_id', 'position')
    )
    op.create_index(op.f('ix_style_examples_sha256'), 'style_examples', ['sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_style_examples_sha256'), table_name='style_examples')
    op.drop_table('style_examples')
    op.drop_index(op.f('ix_styles_state'), table_name='styles')
    op.drop_index(op.f('ix_styles_experience_id'), table_name='styles')
    op.drop_table('styles')
