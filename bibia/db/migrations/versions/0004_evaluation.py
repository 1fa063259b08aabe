"""evaluation: benchmarks, evaluation jobs, reuse reports, reuses, model evaluation settings; measured cost of demonstrators

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 04:45:59.625049
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_evaluation_settings',
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('task', sa.String(length=64), nullable=True),
    sa.Column('promotion_gate', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('model_name')
    )
    op.create_table('benchmarks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('producer', sa.String(length=300), nullable=False),
    sa.Column('period_start', sa.String(length=10), nullable=True),
    sa.Column('period_end', sa.String(length=10), nullable=True),
    sa.Column('licence', sa.String(length=300), nullable=False),
    sa.Column('source_url', sa.String(length=500), nullable=True),
    sa.Column('visibility', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.Boolean(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('n_rows', sa.Integer(), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug', 'version')
    )
    with op.batch_alter_table('benchmarks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_benchmarks_slug'), ['slug'], unique=False)
        batch_op.create_index(batch_op.f('ix_benchmarks_task'), ['task'], unique=False)

    op.create_table('reuses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('model_name', 'organisation_id')
    )
    with op.batch_alter_table('reuses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reuses_model_name'), ['model_name'], unique=False)

    op.create_table('evaluations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('stage', sa.String(length=300), nullable=True),
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('model_ref', sa.String(length=200), nullable=False),
    sa.Column('task', sa.String(length=64), nullable=False),
    sa.Column('truth_column', sa.String(length=100), nullable=True),
    sa.Column('benchmark_id', sa.Integer(), nullable=True),
    sa.Column('data_hash', sa.String(length=64), nullable=True),
    sa.Column('data_name', sa.String(length=200), nullable=True),
    sa.Column('n_rows', sa.Integer(), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('requested_by', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.Column('baseline_metrics', sa.JSON(), nullable=True),
    sa.Column('chart', sa.JSON(), nullable=True),
    sa.Column('bibia_version', sa.String(length=32), nullable=True),
    sa.Column('runner', sa.String(length=32), nullable=True),
    sa.Column('sandbox_id', sa.String(length=32), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('predict_s', sa.Float(), nullable=True),
    sa.Column('cpu_seconds', sa.Float(), nullable=True),
    sa.Column('peak_memory_bytes', sa.BigInteger(), nullable=True),
    sa.Column('energy_wh', sa.Float(), nullable=True),
    sa.Column('co2e_g', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['benchmark_id'], ['benchmarks.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.create_index('ix_evaluations_leaderboard', ['benchmark_id', 'state', 'model_name', 'model_version', 'finished_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_model_name'), ['model_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index('ix_evaluations_state_created', ['state', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_task'), ['task'], unique=False)

    op.create_table('reuse_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.String(length=32), nullable=False),
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('audience', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('evaluation_id')
    )
    with op.batch_alter_table('reuse_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reuse_reports_model_name'), ['model_name'], unique=False)

    with op.batch_alter_table('demo_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=16), server_default='demo', nullable=False))
        batch_op.add_column(sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cpu_seconds', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('peak_memory_bytes', sa.BigInteger(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('demo_sessions', schema=None) as batch_op:
        batch_op.drop_column('peak_memory_bytes')
        batch_op.drop_column('cpu_seconds')
        batch_op.drop_column('finished_at')
        batch_op.drop_column('purpose')

    with op.batch_alter_table('reuse_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reuse_reports_model_name'))

    op.drop_table('reuse_reports')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluations_task'))
        batch_op.drop_index('ix_evaluations_state_created')
        batch_op.drop_index(batch_op.f('ix_evaluations_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_evaluations_model_name'))
        batch_op.drop_index('ix_evaluations_leaderboard')

    op.drop_table('evaluations')
    with op.batch_alter_table('reuses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reuses_model_name'))

    op.drop_table('reuses')
    with op.batch_alter_table('benchmarks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_benchmarks_task'))
        batch_op.drop_index(batch_op.f('ix_benchmarks_slug'))

    op.drop_table('benchmarks')
    op.drop_table('model_evaluation_settings')
