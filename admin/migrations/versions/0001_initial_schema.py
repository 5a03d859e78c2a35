"""ledger, registry, feedback, caps, scope generations

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 15:04:38.848772
"""
from __future__ import annotations

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0001'
down_revision: Union[str, None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('daily_user_total',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('workspace', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('user', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_microusd', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'workspace', 'user', name='uq_daily_user_total')
    )
    with op.batch_alter_table('daily_user_total', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_daily_user_total_day'), ['day'], unique=False)

    op.create_table('document',
    sa.Column('doc_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('workspace', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('chunks', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('uploaded_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('uploaded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('flag_reasons', sa.Text(), nullable=False),
    sa.Column('quarantined', sa.Boolean(), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('doc_id')
    )
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_workspace'), ['workspace'], unique=False)

    op.create_table('feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('user', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('ts', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'user', name='uq_feedback')
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_request_id'), ['request_id'], unique=False)

    op.create_table('request_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=False),
    sa.Column('ts', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('workspace', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('user', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_microusd', sa.BigInteger(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('cache_hit', sa.Boolean(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id')
    )
    with op.batch_alter_table('request_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_record_channel'), ['channel'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_record_day'), ['day'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_record_outcome'), ['outcome'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_record_ts'), ['ts'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_record_user'), ['user'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_record_workspace'), ['workspace'], unique=False)

    op.create_table('scope_generation',
    sa.Column('workspace', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('workspace', 'channel')
    )
    op.create_table('user_cap',
    sa.Column('workspace', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('user', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('daily_cap_microusd', sa.BigInteger(), nullable=False),
    sa.Column('set_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('set_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('workspace', 'user')
    )
    op.create_table('channel_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('doc_id', sa.String(length=64), nullable=False),
    sa.Column('workspace', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('linked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['doc_id'], ['document.doc_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('doc_id', 'workspace', 'channel', name='uq_channel_link')
    )
    with op.batch_alter_table('channel_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_channel_link_doc_id'), ['doc_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('channel_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channel_link_doc_id'))

    op.drop_table('channel_link')
    op.drop_table('user_cap')
    op.drop_table('scope_generation')
    with op.batch_alter_table('request_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_record_workspace'))
        batch_op.drop_index(batch_op.f('ix_request_record_user'))
        batch_op.drop_index(batch_op.f('ix_request_record_ts'))
        batch_op.drop_index(batch_op.f('ix_request_record_outcome'))
        batch_op.drop_index(batch_op.f('ix_request_record_day'))
        batch_op.drop_index(batch_op.f('ix_request_record_channel'))

    op.drop_table('request_record')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_request_id'))

    op.drop_table('feedback')
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_workspace'))

    op.drop_table('document')
    with op.batch_alter_table('daily_user_total', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_daily_user_total_day'))

    op.drop_table('daily_user_total')
