"""document versions: the registry row's store version and a shared version counter

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00.000000
"""
from __future__ import annotations

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('document_version',
    sa.Column('doc_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('last_version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('doc_id')
    )
    # Rows written before versions describe the stores' unversioned points: version 0.
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_column('version')
    op.drop_table('document_version')
