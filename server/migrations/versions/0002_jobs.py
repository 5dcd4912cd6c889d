"""The job engine of the scaled-out form: the jobs table (both stores) and, on PostgreSQL,
procrastinate's schema, read from the installed package (procrastinate is pinned in
pyproject.toml to the release whose schema.sql this applies).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('jobs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('job', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('args', sa.LargeBinary(), nullable=False),
    sa.Column('result', sa.LargeBinary(), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.Column('worker', sa.String(length=128), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_jobs_owner'), 'jobs', ['owner'], unique=False)
    op.create_index(op.f('ix_jobs_state'), 'jobs', ['state'], unique=False)
    op.create_index(op.f('ix_jobs_created_at'), 'jobs', ['created_at'], unique=False)

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from sqlalchemy.util import await_only

        schema = (resources.files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8")
        # Many statements in one script: asyncpg runs that only outside a prepared statement,
        # so it goes to the driver's connection, inside this migration's transaction.
        await_only(bind.connection.dbapi_connection.driver_connection.execute(schema))


def downgrade() -> None:
    op.drop_index(op.f('ix_jobs_created_at'), table_name='jobs')
    op.drop_index(op.f('ix_jobs_state'), table_name='jobs')
    op.drop_index(op.f('ix_jobs_owner'), table_name='jobs')
    op.drop_table('jobs')
