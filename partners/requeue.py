"""Sign-up emails whose task never ran are queued again (docs/reliability.md).

A sign-up, a decision or a confirmation commits its `SignupEmail` rows (unsent) and hands
one task per row to the broker after the commit. When the broker cannot be reached then,
or loses its queue, the row stays unsent and nothing would send it.
`requeue_signup_emails` runs with the notifications' sweep (`commissions.requeue`) and
queues a task again for each email still unsent that was made within
the window of `referral_program.resilience.stranded`. Sending is safe to repeat
(`signup_email_send` sends a row only while it is unsent, under a row lock).
"""

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from referral_program.resilience import REQUEUE_BATCH, queue_again, stranded

from .models import SignupEmail
from .tasks import send_signup_email


def signup_emails_stranded(*, at: datetime, limit: int = REQUEUE_BATCH) -> list[int]:
    """Ids of sign-up emails still unsent a while after they were made, oldest first."""
    unsent = SignupEmail.objects.filter(sent_at__isnull=True)
    return stranded(unsent, due="created_at", at=at, limit=limit)


@shared_task(ignore_result=True)
def requeue_signup_emails() -> int:
    """Queue a send task again for every stranded sign-up email; answers how many."""
    return queue_again(send_signup_email, signup_emails_stranded(at=timezone.now()))
