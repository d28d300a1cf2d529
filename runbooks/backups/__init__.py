"""Backup checks: are the backups there, fresh, complete, restorable (Velero, CronJobs, etcd)"""
