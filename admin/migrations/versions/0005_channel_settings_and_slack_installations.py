"""channel settings (auto-answer, experts) and Slack OAuth installations, bots and install states

Revision ID: 0005
Revises: 0004_feedback_comment
Create Date: 2026-12-01 10:30:00.000000
"""
from __future__ import annotations

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0005'
down_revision: Union[str, None] = '0004_feedback_comment'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('channel_setting',
    sa.Column('platform', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('workspace', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('autoanswer', sa.Boolean(), nullable=False),
    sa.Column('experts', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'workspace', 'channel')
    )
    op.create_table('slack_bot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('enterprise_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('installed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('slack_bot', schema=None) as batch_op:
        batch_op.create_index('ix_slack_bot_lookup', ['client_id', 'enterprise_id', 'team_id', 'installed_at'], unique=False)

    op.create_table('slack_installation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('enterprise_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('installed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('slack_installation', schema=None) as batch_op:
        batch_op.create_index('ix_slack_installation_lookup', ['client_id', 'enterprise_id', 'team_id', 'installed_at'], unique=False)

    op.create_table('slack_oauth_state',
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('expire_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('state')
    )
    with op.batch_alter_table('slack_oauth_state', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_oauth_state_expire_at'), ['expire_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('slack_oauth_state', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_oauth_state_expire_at'))

    op.drop_table('slack_oauth_state')
    with op.batch_alter_table('slack_installation', schema=None) as batch_op:
        batch_op.drop_index('ix_slack_installation_lookup')

    op.drop_table('slack_installation')
    with op.batch_alter_table('slack_bot', schema=None) as batch_op:
        batch_op.drop_index('ix_slack_bot_lookup')

    op.drop_table('slack_bot')
    op.drop_table('channel_setting')
