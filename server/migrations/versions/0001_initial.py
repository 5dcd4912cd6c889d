"""The schema as of the first migration: every table of server/db.py.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Databases made before migrations existed already hold some of these tables: they are adopted.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if 'edit_ops' not in existing:
        op.create_table('edit_ops',
        sa.Column('generation_id', sa.String(length=40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('batch_id', sa.String(length=128), nullable=False),
        sa.Column('origin', sa.String(length=16), nullable=False),
        sa.Column('ops', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('generation_id', 'version')
        )
    if 'edit_snapshots' not in existing:
        op.create_table('edit_snapshots',
        sa.Column('generation_id', sa.String(length=40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('document_sha', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('generation_id', 'version')
        )
    if 'experiences' not in existing:
        op.create_table('experiences',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('settings', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('experiences', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_experiences_key_hash'), ['key_hash'], unique=True)
    if 'files' not in existing:
        op.create_table('files',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('session_id', sa.String(length=40), nullable=False),
        sa.Column('experience_id', sa.String(length=40), nullable=False),
        sa.Column('player_id', sa.String(length=128), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('content_type', sa.String(length=32), nullable=True),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('files', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_files_session_id'), ['session_id'], unique=False)
    if 'generations' not in existing:
        op.create_table('generations',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('session_id', sa.String(length=40), nullable=False),
        sa.Column('experience_id', sa.String(length=40), nullable=False),
        sa.Column('player_id', sa.String(length=128), nullable=False),
        sa.Column('preview_id', sa.String(length=40), nullable=False),
        sa.Column('document_sha', sa.String(length=64), nullable=False),
        sa.Column('glb_sha', sa.String(length=64), nullable=False),
        sa.Column('description', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('loaded_by_server', sa.Boolean(), nullable=False),
        sa.Column('loaded_by_client', sa.Boolean(), nullable=False),
        sa.Column('published_bundle_id', sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('generations', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_generations_session_id'), ['session_id'], unique=False)
    if 'players' not in existing:
        op.create_table('players',
        sa.Column('experience_id', sa.String(length=40), nullable=False),
        sa.Column('player_id', sa.String(length=128), nullable=False),
        sa.Column('first_seen', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('experience_id', 'player_id')
        )
    if 'previews' not in existing:
        op.create_table('previews',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('session_id', sa.String(length=40), nullable=True),
        sa.Column('experience_id', sa.String(length=40), nullable=False),
        sa.Column('player_id', sa.String(length=128), nullable=False),
        sa.Column('file_id', sa.String(length=40), nullable=True),
        sa.Column('png_sha', sa.String(length=64), nullable=False),
        sa.Column('thumb_sha', sa.String(length=64), nullable=False),
        sa.Column('features_sha', sa.String(length=64), nullable=False),
        sa.Column('text_prompt', sa.String(length=500), nullable=True),
        sa.Column('report', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('previews', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_previews_session_id'), ['session_id'], unique=False)
    if 'published' not in existing:
        op.create_table('published',
        sa.Column('bundle_id', sa.String(length=40), nullable=False),
        sa.Column('outfit_id', sa.String(length=40), nullable=False),
        sa.Column('experience_id', sa.String(length=40), nullable=False),
        sa.Column('player_id', sa.String(length=128), nullable=False),
        sa.Column('generation_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('glb_sha', sa.String(length=64), nullable=False),
        sa.Column('preview_sha', sa.String(length=64), nullable=False),
        sa.Column('description', sa.JSON(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('bundle_id'),
        sa.UniqueConstraint('generation_id'),
        sa.UniqueConstraint('outfit_id')
        )
        with op.batch_alter_table('published', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_published_experience_id'), ['experience_id'], unique=False)
    if 'session_requests' not in existing:
        op.create_table('session_requests',
        sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('experience_id', sa.String(length=40), nullable=False),
        sa.Column('player_id', sa.String(length=128), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('session_id', sa.String(length=40), nullable=True),
        sa.Column('settings', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('seq')
        )
        with op.batch_alter_table('session_requests', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_session_requests_experience_id'), ['experience_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_session_requests_id'), ['id'], unique=True)
            batch_op.create_index(batch_op.f('ix_session_requests_state'), ['state'], unique=False)
    if 'sessions' not in existing:
        op.create_table('sessions',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('request_id', sa.String(length=40), nullable=False),
        sa.Column('experience_id', sa.String(length=40), nullable=False),
        sa.Column('player_id', sa.String(length=128), nullable=False),
        sa.Column('started_at', sa.Float(), nullable=False),
        sa.Column('session_time', sa.Float(), nullable=False),
        sa.Column('allowed_2d', sa.Integer(), nullable=False),
        sa.Column('allowed_3d', sa.Integer(), nullable=False),
        sa.Column('used_2d', sa.Integer(), nullable=False),
        sa.Column('used_3d', sa.Integer(), nullable=False),
        sa.Column('ended_at', sa.Float(), nullable=True),
        sa.Column('end_reason', sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('sessions', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_sessions_ended_at'), ['ended_at'], unique=False)
            batch_op.create_index(batch_op.f('ix_sessions_experience_id'), ['experience_id'], unique=False)
    if 'token_revocations' not in existing:
        op.create_table('token_revocations',
        sa.Column('experience_id', sa.String(length=40), nullable=False),
        sa.Column('player_id', sa.String(length=128), nullable=False),
        sa.Column('revoked_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('experience_id', 'player_id')
        )


def downgrade() -> None:
    op.drop_table('token_revocations')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_experience_id'))
        batch_op.drop_index(batch_op.f('ix_sessions_ended_at'))

    op.drop_table('sessions')
    with op.batch_alter_table('session_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_session_requests_state'))
        batch_op.drop_index(batch_op.f('ix_session_requests_id'))
        batch_op.drop_index(batch_op.f('ix_session_requests_experience_id'))

    op.drop_table('session_requests')
    with op.batch_alter_table('published', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_published_experience_id'))

    op.drop_table('published')
    with op.batch_alter_table('previews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_previews_session_id'))

    op.drop_table('previews')
    op.drop_table('players')
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_generations_session_id'))

    op.drop_table('generations')
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_files_session_id'))

    op.drop_table('files')
    with op.batch_alter_table('experiences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiences_key_hash'))

    op.drop_table('experiences')
    op.drop_table('edit_snapshots')
    op.drop_table('edit_ops')
